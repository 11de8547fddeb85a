package trail

import (
	"context"
	"encoding/base64"
	"fmt"
	"strings"

	"github.com/cairn-audit/cairn/internal/awsproto"
	"github.com/cairn-audit/cairn/internal/selector"
	"github.com/cairn-audit/cairn/internal/state"
	"github.com/cairn-audit/cairn/internal/tags"
)

// CreateInput is CreateTrail's input. Empty strings mean "not set"; nil
// booleans take CloudTrail's defaults (IncludeGlobalServiceEvents true,
// the others false).
type CreateInput struct {
	Name                      string
	S3BucketName              string
	S3KeyPrefix               string
	SnsTopicName              string
	CloudWatchLogsLogGroupArn string
	CloudWatchLogsRoleArn     string
	KmsKeyId                  string

	IncludeGlobalServiceEvents *bool
	IsMultiRegionTrail         *bool
	EnableLogFileValidation    *bool
	IsOrganizationTrail        *bool

	Tags []tags.Tag
}

// UpdateInput is UpdateTrail's input. A nil member leaves the setting as
// it is; an empty string clears an optional setting (prefix, topic, key,
// CloudWatch Logs), as on AWS.
type UpdateInput struct {
	Name                      string
	S3BucketName              *string
	S3KeyPrefix               *string
	SnsTopicName              *string
	CloudWatchLogsLogGroupArn *string
	CloudWatchLogsRoleArn     *string
	KmsKeyId                  *string

	IncludeGlobalServiceEvents *bool
	IsMultiRegionTrail         *bool
	EnableLogFileValidation    *bool
	IsOrganizationTrail        *bool
}

func boolOr(p *bool, def bool) bool {
	if p == nil {
		return def
	}
	return *p
}

// setPrefix, setTopic and setKMS validate and apply the optional
// destination settings Create and Update share. The trail's home region and
// account must already be set: SNS topic and KMS key ARNs derive from them.
func (s *Service) setPrefix(t *Trail, prefix string) error {
	if err := validateS3KeyPrefix(prefix); err != nil {
		return err
	}
	t.S3KeyPrefix = prefix
	return nil
}

func (s *Service) setTopic(t *Trail, topic string) error {
	if topic == "" {
		t.SnsTopicName, t.SnsTopicARN = "", ""
		return nil
	}
	arn, err := snsTopicARN(topic, t.HomeRegion, t.AccountID)
	if err != nil {
		return err
	}
	if s.topicExists != nil && !s.topicExists(topic) {
		// CloudTrail's text, which tools match on; what Cairn means by it
		// (no [[topics]] entry of that name) goes to the log and the docs.
		s.log.Warn("trail names a notification topic the configuration does not declare; declare it under [[topics]]",
			"trail", t.Name, "topic", topic)
		return awsproto.Errorf("InsufficientSnsTopicPolicyException", "SNS Topic does not exist or the topic policy is incorrect!")
	}
	t.SnsTopicName, t.SnsTopicARN = topic, arn
	return nil
}

func (s *Service) setKMS(t *Trail, id string) error {
	if id == "" {
		t.KmsKeyId = ""
		return nil
	}
	arn, err := awsproto.KMSKeyARN(id, t.HomeRegion, t.AccountID)
	if err != nil {
		return err
	}
	t.KmsKeyId = arn
	return nil
}

func checkMultiRegionGlobal(t *Trail) error {
	if t.IsMultiRegionTrail && !t.IncludeGlobalServiceEvents {
		return awsproto.Errorf("InvalidParameterCombinationException", "Multi-Region trail must include global service events.")
	}
	return nil
}

// Create creates a trail in region, not logging (call StartLogging), with
// the default event selection.
func (s *Service) Create(ctx context.Context, region string, in CreateInput) (Trail, error) {
	if err := ValidateName(in.Name); err != nil {
		return Trail{}, err
	}
	if boolOr(in.IsOrganizationTrail, false) {
		return Trail{}, organizationsNotInUse()
	}
	if err := validateBucketName(in.S3BucketName); err != nil {
		return Trail{}, err
	}
	now := s.now()
	t := Trail{
		Name:                       in.Name,
		HomeRegion:                 region,
		AccountID:                  s.accountID,
		S3BucketName:               in.S3BucketName,
		IncludeGlobalServiceEvents: boolOr(in.IncludeGlobalServiceEvents, true),
		IsMultiRegionTrail:         boolOr(in.IsMultiRegionTrail, false),
		LogFileValidationEnabled:   boolOr(in.EnableLogFileValidation, false),
		CreatedTime:                now,
		UpdatedTime:                now,
	}
	if err := s.setPrefix(&t, in.S3KeyPrefix); err != nil {
		return Trail{}, err
	}
	if err := s.setTopic(&t, in.SnsTopicName); err != nil {
		return Trail{}, err
	}
	if err := s.setKMS(&t, in.KmsKeyId); err != nil {
		return Trail{}, err
	}
	if err := validateCloudWatchLogs(in.CloudWatchLogsLogGroupArn, in.CloudWatchLogsRoleArn); err != nil {
		return Trail{}, err
	}
	t.CloudWatchLogsLogGroupArn, t.CloudWatchLogsRoleArn = in.CloudWatchLogsLogGroupArn, in.CloudWatchLogsRoleArn
	if err := checkMultiRegionGlobal(&t); err != nil {
		return Trail{}, err
	}
	if err := tags.Validate(in.Tags); err != nil {
		return Trail{}, err
	}
	tagList, err := tags.Merge(nil, in.Tags)
	if err != nil {
		return Trail{}, err
	}
	// The bucket check talks to the object store, so it runs before the
	// transaction rather than inside the store's write lock.
	if err := s.bucketMustExist(ctx, t.S3BucketName); err != nil {
		return Trail{}, err
	}
	err = s.store.Update(ctx, func(tx *state.Tx) error {
		all, err := loadAll(tx)
		if err != nil {
			return err
		}
		if err := s.checkNameFree(all, &t); err != nil {
			return err
		}
		if err := s.checkRoom(all, &t); err != nil {
			return err
		}
		if err := put(tx, &t); err != nil {
			return err
		}
		return tags.Save(tx, t.ARN(), tagList)
	})
	if err != nil {
		return Trail{}, err
	}
	s.log.InfoContext(ctx, "trail created", "trail", t.ARN(), "multiRegion", t.IsMultiRegionTrail, "bucket", t.S3BucketName)
	s.notifyChanged(ctx)
	return t, nil
}

// Update changes a trail's settings; only the home region may.
func (s *Service) Update(ctx context.Context, region string, in UpdateInput) (Trail, error) {
	if boolOr(in.IsOrganizationTrail, false) {
		if _, err := parseRef(in.Name); err != nil {
			return Trail{}, err
		}
		return Trail{}, organizationsNotInUse()
	}
	if in.S3BucketName != nil {
		if err := validateBucketName(*in.S3BucketName); err != nil {
			return Trail{}, err
		}
		// Report a missing trail before a missing bucket, as AWS does.
		if err := s.store.View(ctx, func(r state.Reader) error {
			_, err := s.resolveHome(r, region, in.Name)
			return err
		}); err != nil {
			return Trail{}, err
		}
		if err := s.bucketMustExist(ctx, *in.S3BucketName); err != nil {
			return Trail{}, err
		}
	}
	var out Trail
	err := s.store.Update(ctx, func(tx *state.Tx) error {
		t, err := s.resolveHome(tx, region, in.Name)
		if err != nil {
			return err
		}
		wasMulti := t.IsMultiRegionTrail
		if in.S3BucketName != nil {
			t.S3BucketName = *in.S3BucketName
		}
		if in.S3KeyPrefix != nil {
			if err := s.setPrefix(&t, *in.S3KeyPrefix); err != nil {
				return err
			}
		}
		if in.SnsTopicName != nil {
			if err := s.setTopic(&t, *in.SnsTopicName); err != nil {
				return err
			}
		}
		if in.KmsKeyId != nil {
			if err := s.setKMS(&t, *in.KmsKeyId); err != nil {
				return err
			}
		}
		group, role := t.CloudWatchLogsLogGroupArn, t.CloudWatchLogsRoleArn
		if in.CloudWatchLogsLogGroupArn != nil {
			group = *in.CloudWatchLogsLogGroupArn
		}
		if in.CloudWatchLogsRoleArn != nil {
			role = *in.CloudWatchLogsRoleArn
		}
		if err := validateCloudWatchLogs(group, role); err != nil {
			return err
		}
		t.CloudWatchLogsLogGroupArn, t.CloudWatchLogsRoleArn = group, role
		t.IncludeGlobalServiceEvents = boolOr(in.IncludeGlobalServiceEvents, t.IncludeGlobalServiceEvents)
		t.IsMultiRegionTrail = boolOr(in.IsMultiRegionTrail, t.IsMultiRegionTrail)
		t.LogFileValidationEnabled = boolOr(in.EnableLogFileValidation, t.LogFileValidationEnabled)
		if in.IsOrganizationTrail != nil {
			t.IsOrganizationTrail = false
		}
		if err := checkMultiRegionGlobal(&t); err != nil {
			return err
		}
		if t.IsMultiRegionTrail && !wasMulti {
			all, err := loadAll(tx)
			if err != nil {
				return err
			}
			others := without(all, &t)
			if err := s.checkNameFree(others, &t); err != nil {
				return err
			}
			if err := s.checkRoom(others, &t); err != nil {
				return err
			}
		}
		t.UpdatedTime = s.now()
		if err := put(tx, &t); err != nil {
			return err
		}
		out = t
		return nil
	})
	if err != nil {
		return Trail{}, err
	}
	s.log.InfoContext(ctx, "trail updated", "trail", out.ARN())
	s.notifyChanged(ctx)
	return out, nil
}

// Delete deletes a trail and its tags. Delivered log files stay where
// they are, as on AWS.
func (s *Service) Delete(ctx context.Context, region, nameOrARN string) error {
	var arn string
	err := s.store.Update(ctx, func(tx *state.Tx) error {
		t, err := s.resolveHome(tx, region, nameOrARN)
		if err != nil {
			return err
		}
		arn = t.ARN()
		if err := tx.Delete(trailKey(t.HomeRegion, t.Name)); err != nil {
			return fmt.Errorf("trail: delete %s: %w", arn, err)
		}
		return tags.Delete(tx, arn)
	})
	if err != nil {
		return err
	}
	s.log.InfoContext(ctx, "trail deleted", "trail", arn)
	s.notifyChanged(ctx)
	return nil
}

// Get returns one trail by name (visible in region, shadows included) or
// by ARN (any region of the account).
func (s *Service) Get(ctx context.Context, region, nameOrARN string) (Trail, error) {
	var t Trail
	err := s.store.View(ctx, func(r state.Reader) error {
		var err error
		t, err = s.resolve(r, region, nameOrARN)
		return err
	})
	return t, err
}

// Describe implements DescribeTrails. With no names it returns the
// region's own trails and, when includeShadow, the shadows of multi-region
// trails from other regions. Names only match trails visible in region;
// ARNs may name any region. Names and ARNs that match nothing are skipped,
// as on AWS.
func (s *Service) Describe(ctx context.Context, region string, names []string, includeShadow bool) ([]Trail, error) {
	refs := make([]ref, 0, len(names))
	for _, n := range names {
		r, err := parseRef(n)
		if err != nil {
			return nil, err
		}
		refs = append(refs, r)
	}
	var out []Trail
	err := s.store.View(ctx, func(r state.Reader) error {
		all, err := loadAll(r)
		if err != nil {
			return err
		}
		if len(refs) == 0 {
			for _, t := range all {
				if t.HomeRegion == region {
					out = append(out, t)
				}
			}
			if includeShadow {
				for _, t := range all {
					if t.HomeRegion != region && t.IsMultiRegionTrail {
						out = append(out, t)
					}
				}
			}
			return nil
		}
		seen := map[string]bool{}
		for _, ref := range refs {
			t, ok, err := s.find(r, region, ref)
			if err != nil {
				return err
			}
			if !ok || seen[t.ARN()] {
				continue
			}
			if !ref.isARN && t.HomeRegion != region && !includeShadow {
				continue
			}
			seen[t.ARN()] = true
			out = append(out, t)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// List implements ListTrails: every trail of the account in every region,
// ordered by home region and name, a page at a time. The token is opaque
// to clients; it encodes where the next page starts.
func (s *Service) List(ctx context.Context, nextToken string) ([]Trail, string, error) {
	after := ""
	if nextToken != "" {
		raw, err := base64.RawURLEncoding.DecodeString(nextToken)
		if err != nil || !strings.HasPrefix(string(raw), trailPrefix) {
			return nil, "", awsproto.Errorf("InvalidNextTokenException", "The NextToken is not valid. Use the NextToken from the previous ListTrails response.")
		}
		after = string(raw)
	}
	var page []Trail
	next := ""
	err := s.store.View(ctx, func(r state.Reader) error {
		all, err := loadAll(r)
		if err != nil {
			return err
		}
		for i := range all {
			t := &all[i]
			if after != "" && trailKey(t.HomeRegion, t.Name) <= after {
				continue
			}
			if len(page) == s.pageSize {
				last := &page[len(page)-1]
				next = base64.RawURLEncoding.EncodeToString([]byte(trailKey(last.HomeRegion, last.Name)))
				break
			}
			page = append(page, *t)
		}
		return nil
	})
	if err != nil {
		return nil, "", err
	}
	return page, next, nil
}

// GetStatus returns the trail whose Status GetTrailStatus reports.
func (s *Service) GetStatus(ctx context.Context, region, nameOrARN string) (Trail, error) {
	t, err := s.Get(ctx, region, nameOrARN)
	if err != nil && awsproto.IsCode(err, "TrailNotFoundException") && !IsARN(nameOrARN) {
		// GetTrailStatus names the trail by the ARN it would have here.
		return Trail{}, s.notFound(TrailARN(region, s.accountID, nameOrARN))
	}
	return t, err
}

// StartLogging turns logging on. Calling it on a logging trail changes
// nothing, so StartLoggingTime keeps the time logging really started.
func (s *Service) StartLogging(ctx context.Context, region, nameOrARN string) error {
	return s.setLogging(ctx, region, nameOrARN, true)
}

// StopLogging turns logging off; the trail and its settings stay.
func (s *Service) StopLogging(ctx context.Context, region, nameOrARN string) error {
	return s.setLogging(ctx, region, nameOrARN, false)
}

func (s *Service) setLogging(ctx context.Context, region, nameOrARN string, on bool) error {
	var arn string
	changed := false
	err := s.store.Update(ctx, func(tx *state.Tx) error {
		t, err := s.resolveHome(tx, region, nameOrARN)
		if err != nil {
			return err
		}
		arn = t.ARN()
		if t.Status.IsLogging == on {
			return nil
		}
		changed = true
		t.Status.IsLogging = on
		if on {
			t.Status.StartLoggingTime = s.now()
		} else {
			t.Status.StopLoggingTime = s.now()
		}
		return put(tx, &t)
	})
	if err == nil && changed {
		s.log.InfoContext(ctx, "trail logging changed", "trail", arn, "logging", on)
		s.notifyChanged(ctx)
	}
	return err
}

// PutEventSelectors replaces the trail's selectors with either basic or
// advanced ones (nil means "not given"); one kind overwrites the other.
func (s *Service) PutEventSelectors(ctx context.Context, region, nameOrARN string, basic []selector.EventSelector, advanced []selector.AdvancedEventSelector) (Trail, error) {
	if (basic == nil) == (advanced == nil) {
		return Trail{}, awsproto.Errorf("InvalidParameterCombinationException",
			"Specify either EventSelectors or AdvancedEventSelectors, but not both.")
	}
	var out Trail
	err := s.store.Update(ctx, func(tx *state.Tx) error {
		t, err := s.resolveHome(tx, region, nameOrARN)
		if err != nil {
			return err
		}
		if basic != nil {
			if err := selector.ValidateBasic(basic); err != nil {
				return err
			}
			t.EventSelectors, t.AdvancedEventSelectors = selector.Normalize(basic), nil
		} else {
			if err := selector.ValidateAdvanced(advanced); err != nil {
				return err
			}
			t.EventSelectors, t.AdvancedEventSelectors = nil, advanced
		}
		t.HasCustomEventSelectors = true
		t.UpdatedTime = s.now()
		if err := put(tx, &t); err != nil {
			return err
		}
		out = t
		return nil
	})
	if err == nil {
		s.notifyChanged(ctx)
	}
	return out, err
}

// PutInsightSelectors sets the trail's Insights selectors; an empty list
// turns Insights off.
func (s *Service) PutInsightSelectors(ctx context.Context, region, nameOrARN string, sels []selector.InsightSelector) (Trail, error) {
	var out Trail
	err := s.store.Update(ctx, func(tx *state.Tx) error {
		t, err := s.resolveHome(tx, region, nameOrARN)
		if err != nil {
			return err
		}
		if err := selector.ValidateInsight(sels); err != nil {
			return err
		}
		if err := selector.CheckInsightPrerequisites(sels, selector.CoverageOf(t.EventSelectors, t.AdvancedEventSelectors)); err != nil {
			return err
		}
		t.InsightSelectors = append([]selector.InsightSelector(nil), sels...)
		t.UpdatedTime = s.now()
		if err := put(tx, &t); err != nil {
			return err
		}
		out = t
		return nil
	})
	return out, err
}

// GetInsightSelectors returns the trail, failing with
// InsightNotEnabledException when Insights is off.
func (s *Service) GetInsightSelectors(ctx context.Context, region, nameOrARN string) (Trail, error) {
	t, err := s.Get(ctx, region, nameOrARN)
	if err != nil {
		return Trail{}, err
	}
	if !t.HasInsightSelectors() {
		return Trail{}, awsproto.Errorf("InsightNotEnabledException",
			"Trail %s does not have Insights enabled. Edit the trail settings to enable Insights, and then try the operation again.", t.ARN())
	}
	return t, nil
}

// Logging lists the trails that are logging, in every region, for
// delivery to act on.
func (s *Service) Logging(ctx context.Context) ([]Trail, error) {
	var out []Trail
	err := s.store.View(ctx, func(r state.Reader) error {
		all, err := loadAll(r)
		if err != nil {
			return err
		}
		for _, t := range all {
			if t.Status.IsLogging {
				out = append(out, t)
			}
		}
		return nil
	})
	return out, err
}

// All lists every trail of the account, ordered by home region and name.
func (s *Service) All(ctx context.Context) ([]Trail, error) {
	var out []Trail
	err := s.store.View(ctx, func(r state.Reader) error {
		var err error
		out, err = loadAll(r)
		return err
	})
	return out, err
}

// ByARN returns the trail with this ARN, or an error wrapping ErrNotFound.
func (s *Service) ByARN(ctx context.Context, arn string) (Trail, error) {
	ref, err := parseRef(arn)
	if err != nil || !ref.isARN {
		return Trail{}, fmt.Errorf("trail: %s is not a trail ARN: %w", arn, ErrNotFound)
	}
	var t Trail
	var ok bool
	err = s.store.View(ctx, func(r state.Reader) error {
		var err error
		t, ok, err = s.find(r, ref.region, ref)
		return err
	})
	if err != nil {
		return Trail{}, err
	}
	if !ok {
		return Trail{}, fmt.Errorf("trail: %s: %w", arn, ErrNotFound)
	}
	return t, nil
}

// ResourceExists tells the tag operations whether a trail ARN names an
// existing trail, reading r so that the check and the tag write share one
// transaction.
func (s *Service) ResourceExists(ctx context.Context, r state.Reader, arn string) (bool, error) {
	ref, err := parseRef(arn)
	if err != nil {
		return false, err
	}
	if !ref.isARN {
		return false, nil
	}
	_, ok, err := s.find(r, ref.region, ref)
	return ok, err
}
