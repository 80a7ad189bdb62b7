package dashboards

import (
	"crypto/sha256"
	"encoding/hex"
)

// MaxUIDLength is the longest dashboard uid Grafana accepts.
const MaxUIDLength = 40

// uidPrefix starts every uid Canopy owns, so that they never collide with
// dashboards people make by hand.
const uidPrefix = "canopy-"

// hashLength is how many hex digits of the name's SHA-256 end a shortened uid.
const hashLength = 8

// UID returns the stable uid of a dashboard of kind k. Admin kinds ignore
// project. A project uid is canopy-<kind>-<project>; when that is longer than
// MaxUIDLength, the project name is cut and followed by a short hash of the
// whole name, so that two long names sharing a prefix still differ.
func UID(k Kind, project string) string {
	if k.Admin() {
		return uidPrefix + string(k)
	}
	uid := uidPrefix + string(k) + "-" + project
	if len(uid) <= MaxUIDLength {
		return uid
	}
	sum := sha256.Sum256([]byte(project))
	suffix := "-" + hex.EncodeToString(sum[:])[:hashLength]
	keep := MaxUIDLength - len(uidPrefix+string(k)+"-") - len(suffix)
	return uidPrefix + string(k) + "-" + project[:keep] + suffix
}
