package api

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/distribution/reference"
	"k8s.io/apimachinery/pkg/api/validate/content"

	"canopy.dev/canopy/tenancy"
)

// Limits of an app's spec.
const (
	maxReplicas = 50
	maxEnv      = 100
)

const dnsLabelMessage = "must be a DNS-1123 label: lower-case letters, digits and '-', " +
	"starting and ending with a letter or digit, at most 63 characters"

// appNameMessage: an app's name names its Service, and a Service name must
// be a DNS-1035 label, which starts with a letter.
const appNameMessage = "must be a DNS-1035 label: lower-case letters, digits and '-', " +
	"starting with a letter and ending with a letter or digit, at most 63 characters"

func startsWithLetter(s string) bool { return s != "" && s[0] >= 'a' && s[0] <= 'z' }

// validateProjectName checks name and that prefix+name is a namespace name
// that is not reserved.
func validateProjectName(name, prefix string, reserved []string) []tenancy.FieldError {
	if len(content.IsDNS1123Label(name)) > 0 {
		return []tenancy.FieldError{field("name", dnsLabelMessage)}
	}
	if ns := prefix + name; len(ns) > content.DNS1123LabelMaxLength {
		return []tenancy.FieldError{field("name", fmt.Sprintf(
			"is too long: the namespace %q would exceed 63 characters; use at most %d",
			ns, content.DNS1123LabelMaxLength-len(prefix)))}
	}
	if ns := prefix + name; slices.Contains(reserved, ns) {
		return []tenancy.FieldError{field("name", fmt.Sprintf(
			"is reserved: the namespace %q belongs to the platform", ns))}
	}
	return nil
}

// validateApp checks every field of a new app and lists all that are wrong.
func validateApp(a *appCreate) []tenancy.FieldError {
	var fields []tenancy.FieldError
	if len(content.IsDNS1123Label(a.Name)) > 0 || !startsWithLetter(a.Name) {
		fields = append(fields, field("name", appNameMessage))
	}
	fields = append(fields, validateImage("image", a.Image)...)
	if a.TargetPort < 1 || a.TargetPort > 65535 {
		fields = append(fields, field("targetPort", "must be between 1 and 65535"))
	}
	if a.Replicas != nil {
		fields = append(fields, validateReplicas(*a.Replicas)...)
	}
	return append(fields, validateEnv(a.Env)...)
}

// validateImage checks an image reference the way a container runtime
// reads it ("nginx", "ghcr.io/org/app:1.2", "app@sha256:...").
func validateImage(name, image string) []tenancy.FieldError {
	if image == "" || len(image) > 512 || strings.TrimSpace(image) != image {
		return []tenancy.FieldError{
			field(name, "must be an image reference such as ghcr.io/org/app:1.2")}
	}
	if _, err := reference.ParseNormalizedNamed(image); err != nil {
		return []tenancy.FieldError{field(name, "must be an image reference ("+err.Error()+")")}
	}
	return nil
}

func validateReplicas(n int) []tenancy.FieldError {
	if n < 0 || n > maxReplicas {
		msg := fmt.Sprintf("must be between 0 and %d", maxReplicas)
		return []tenancy.FieldError{field("replicas", msg)}
	}
	return nil
}

// validateEnv checks that every variable name is a C identifier.
func validateEnv(env map[string]string) []tenancy.FieldError {
	if len(env) > maxEnv {
		msg := fmt.Sprintf("must hold at most %d variables", maxEnv)
		return []tenancy.FieldError{field("env", msg)}
	}
	names := make([]string, 0, len(env))
	for k := range env {
		names = append(names, k)
	}
	sort.Strings(names)
	const msg = "must be a C identifier: letters, digits and '_', not starting with a digit"
	var fields []tenancy.FieldError
	for _, k := range names {
		if len(content.IsCIdentifier(k)) > 0 {
			fields = append(fields, field("env."+k, msg))
		}
	}
	return fields
}
