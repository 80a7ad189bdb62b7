package auth

import (
	"math"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// KeyedLimiter keeps one token bucket per key (a client address, an
// account), refilling n tokens per period up to n. Time is passed in, so a
// test can drive it with its own clock.
type KeyedLimiter struct {
	mu        sync.Mutex
	limit     rate.Limit
	burst     int
	buckets   map[string]*rate.Limiter
	lastSweep time.Time
}

// NewKeyedLimiter allows n events per period for each key.
func NewKeyedLimiter(n int, period time.Duration) *KeyedLimiter {
	return &KeyedLimiter{
		limit:   rate.Limit(float64(n) / period.Seconds()),
		burst:   n,
		buckets: map[string]*rate.Limiter{},
	}
}

// Allow takes one event from key's bucket. If the bucket is empty it takes
// nothing and says how long until one event is allowed again.
func (l *KeyedLimiter) Allow(key string, now time.Time) (bool, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.bucket(key, now)
	if b.AllowN(now, 1) {
		return true, 0
	}
	return false, l.wait(b, now)
}

// Check says whether key may have one more event, without taking it.
func (l *KeyedLimiter) Check(key string, now time.Time) (bool, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.bucket(key, now)
	if b.TokensAt(now) >= 1 {
		return true, 0
	}
	return false, l.wait(b, now)
}

// Take records one event for key even if its bucket is empty (a failure
// that already happened): the bucket goes into debt and refills later.
func (l *KeyedLimiter) Take(key string, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.bucket(key, now).ReserveN(now, 1)
}

// wait is how long until b holds one token.
func (l *KeyedLimiter) wait(b *rate.Limiter, now time.Time) time.Duration {
	missing := 1 - b.TokensAt(now)
	secs := math.Ceil(missing / float64(l.limit))
	return time.Duration(max(secs, 1)) * time.Second
}

// bucket returns key's bucket, creating it full. Once a minute it drops
// buckets that have refilled, which are the same as new ones.
func (l *KeyedLimiter) bucket(key string, now time.Time) *rate.Limiter {
	if now.Sub(l.lastSweep) > time.Minute {
		for k, b := range l.buckets {
			if b.TokensAt(now) >= float64(l.burst) {
				delete(l.buckets, k)
			}
		}
		l.lastSweep = now
	}
	b, ok := l.buckets[key]
	if !ok {
		b = rate.NewLimiter(l.limit, l.burst)
		b.SetBurstAt(now, l.burst) // start full at the injected time
		l.buckets[key] = b
	}
	return b
}
