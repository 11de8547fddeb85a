package lake

import (
	"github.com/cairn-audit/cairn/internal/awsproto"
)

// Billing modes (the model's BillingMode enum) and the retention each
// allows, in days.
const (
	BillingExtendable = "EXTENDABLE_RETENTION_PRICING"
	BillingFixed      = "FIXED_RETENTION_PRICING"

	MinRetentionDays               = 7
	MaxRetentionDaysExtendable     = 3653
	MaxRetentionDaysFixed          = 2557
	DefaultRetentionDaysExtendable = 366
	DefaultRetentionDaysFixed      = 2557
)

// Limits from the model and the quota table (reference §1.3, §7).
const (
	// MaxPerRegion is the quota of event data stores per region; stores
	// pending deletion count, as on AWS.
	MaxPerRegion = 10
	// MaxListResults bounds ListEventDataStores' MaxResults.
	MaxListResults = 1000
	minNameLen     = 3
	maxNameLen     = 128
)

func invalidParameter(format string, args ...any) error {
	return awsproto.Errorf("InvalidParameterException", format, args...)
}

// validateName applies the model's EventDataStoreName rule: 3-128
// characters of ^[a-zA-Z0-9._\-]+$.
func validateName(name string) error {
	if len(name) < minNameLen || len(name) > maxNameLen {
		return invalidParameter("Event data store name %q is %d characters long; a name must be %d to %d characters.", name, len(name), minNameLen, maxNameLen)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return invalidParameter("Event data store name %q is not valid: it can only contain letters, numbers, periods (.), underscores (_) and hyphens (-).", name)
		}
	}
	return nil
}

func validBillingMode(m string) error {
	if m != BillingExtendable && m != BillingFixed {
		return invalidParameter("BillingMode %q is not valid; it must be %s or %s.", m, BillingExtendable, BillingFixed)
	}
	return nil
}

// maxRetention is the longest retention a billing mode allows.
func maxRetention(mode string) int {
	if mode == BillingFixed {
		return MaxRetentionDaysFixed
	}
	return MaxRetentionDaysExtendable
}

func defaultRetention(mode string) int {
	if mode == BillingFixed {
		return DefaultRetentionDaysFixed
	}
	return DefaultRetentionDaysExtendable
}

func validateRetention(days int, mode string) error {
	if max := maxRetention(mode); days < MinRetentionDays || days > max {
		return invalidParameter("RetentionPeriod %d is not valid for billing mode %s: it must be between %d and %d days.", days, mode, MinRetentionDays, max)
	}
	return nil
}
