package trail

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cairn-audit/cairn/internal/state"
)

// The Record* methods are for the delivery package: they keep the
// delivery half of GetTrailStatus current. Each takes the time of the
// attempt and the error text to show the user ("" for success), and fails
// with an error wrapping ErrNotFound if the trail was deleted meanwhile.
// On success the Latest*Error field is cleared, so a fixed bucket policy
// stops showing the old error.

// RecordDelivery records a log file delivery attempt to S3.
func (s *Service) RecordDelivery(ctx context.Context, trailARN string, at time.Time, errText string) error {
	return s.updateStatus(ctx, trailARN, func(st *Status) {
		at = at.UTC()
		st.LatestDeliveryAttemptTime = at
		st.LatestDeliveryError = errText
		if errText == "" {
			st.LatestDeliveryTime = at
			st.LatestDeliveryAttemptSucceeded = at
		}
	})
}

// RecordDigestDelivery records a digest file delivery attempt to S3.
func (s *Service) RecordDigestDelivery(ctx context.Context, trailARN string, at time.Time, errText string) error {
	return s.updateStatus(ctx, trailARN, func(st *Status) {
		st.LatestDigestDeliveryError = errText
		if errText == "" {
			st.LatestDigestDeliveryTime = at.UTC()
		}
	})
}

// RecordNotification records an SNS notification attempt.
func (s *Service) RecordNotification(ctx context.Context, trailARN string, at time.Time, errText string) error {
	return s.updateStatus(ctx, trailARN, func(st *Status) {
		at = at.UTC()
		st.LatestNotificationAttemptTime = at
		st.LatestNotificationError = errText
		if errText == "" {
			st.LatestNotificationTime = at
			st.LatestNotificationAttemptSucceeded = at
		}
	})
}

// RecordCloudWatchLogsDelivery records a CloudWatch Logs delivery attempt.
func (s *Service) RecordCloudWatchLogsDelivery(ctx context.Context, trailARN string, at time.Time, errText string) error {
	return s.updateStatus(ctx, trailARN, func(st *Status) {
		st.LatestCloudWatchLogsDeliveryError = errText
		if errText == "" {
			st.LatestCloudWatchLogsDeliveryTime = at.UTC()
		}
	})
}

func (s *Service) updateStatus(ctx context.Context, trailARN string, fn func(*Status)) error {
	ref, err := parseRef(trailARN)
	if err != nil || !ref.isARN {
		return fmt.Errorf("trail: record status of %s: not a trail ARN: %w", trailARN, ErrNotFound)
	}
	err = s.store.Update(ctx, func(tx *state.Tx) error {
		t, ok, err := s.find(tx, ref.region, ref)
		if err != nil {
			return err
		}
		if !ok {
			return ErrNotFound
		}
		fn(&t.Status)
		return put(tx, &t)
	})
	if errors.Is(err, ErrNotFound) {
		return fmt.Errorf("trail: record status of %s: %w", trailARN, ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("trail: record status of %s: %w", trailARN, err)
	}
	return nil
}
