package loadtest

import (
	"context"
	"net/http/httptest"
	"testing"
	"time"
)

func TestRunCountsAnswers(t *testing.T) {
	srv := httptest.NewServer(Bare())
	defer srv.Close()
	res, err := Run(context.Background(), srv.URL, "", 4, 50*time.Millisecond, 200*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if res.Requests == 0 || res.Errors != 0 || res.P99 < res.P50 || res.P50 <= 0 {
		t.Errorf("result %+v: want answered requests, no errors, p99 ≥ p50 > 0", res)
	}
}

func TestRunRejectsFailingTarget(t *testing.T) {
	srv := httptest.NewServer(Bare())
	srv.Close()
	if _, err := Run(context.Background(), srv.URL, "", 1, 0, 10*time.Millisecond); err == nil {
		t.Error("a closed server gave no error")
	}
}
