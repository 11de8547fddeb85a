package history

import "github.com/cairn-audit/cairn/internal/event"

// class is what the event history makes of a record.
type class int

const (
	classExcluded   class = iota // never in the event history
	classManagement              // always indexed
	classData                    // indexed only with Options.IncludeDataEvents
	classInsight                 // indexed, returned only with EventCategory=insight
)

// classify decides whether a record belongs in the event history.
//
// CloudTrail's event history holds management events and Insights events;
// Cairn adds the events applications send through channels.
// Records say which they are since eventVersion 1.07 (eventCategory) or 1.06
// (managementEvent); older records say neither, so for them the event type
// decides (API calls, console actions and sign-ins and service events are
// management events) unless the call is one of the well-known data-plane
// operations that CloudTrail only ever logged as data events (S3 object
// operations, Lambda Invoke, DynamoDB item operations). The flaws2 data set
// has exactly such 1.04/1.05 S3 GetObject and ListObjects records.
//
// Network activity events are handled like data events: they are not in
// AWS's event history, and Cairn includes them only on request.
func classify(r *event.Record) class {
	if r.EventType == "AwsCloudTrailInsight" {
		return classInsight
	}
	switch r.EventCategory {
	case "Management":
		return classManagement
	case "Data", "NetworkActivity":
		return classData
	case "Insight":
		return classInsight
	case "ActivityAuditLog":
		// Events from channels (PutAuditEvents). In AWS they reach only
		// Lake; Cairn keeps them in the event history too, so that
		// applications' own audit events are searchable like AWS's
		// (a documented Cairn extension).
		return classManagement
	case "":
	default:
		// The other Lake-only categories (ConfigurationItem, Evidence)
		// never appear in the event history.
		return classExcluded
	}
	switch r.ManagementEvent {
	case event.True:
		return classManagement
	case event.False:
		return classData
	}
	switch r.EventType {
	case "AwsApiCall", "AwsConsoleAction", "AwsConsoleSignIn", "AwsServiceEvent", "":
		// eventType appeared in 1.02; records older than that are API calls.
	case "AwsVpceEvent", "AwsVpceEvents":
		return classData
	default:
		return classExcluded
	}
	if isDataOperation(r) {
		return classData
	}
	return classManagement
}

// isDataOperation recognises data events in records too old to say so.
func isDataOperation(r *event.Record) bool {
	switch r.EventSource {
	case "s3.amazonaws.com":
		// Object-level calls carry an AWS::S3::Object resource (also the
		// bucket-level ListObjects that CloudTrail logs as a data event).
		for _, res := range r.RecordResources {
			if res.Type == "AWS::S3::Object" {
				return true
			}
		}
		return s3ObjectOperations[r.EventName]
	case "lambda.amazonaws.com":
		return r.EventName == "Invoke"
	case "dynamodb.amazonaws.com":
		return dynamoDBItemOperations[r.EventName]
	}
	return false
}

// s3ObjectOperations are S3 API calls that CloudTrail logs only as data
// events. Never written after init.
var s3ObjectOperations = map[string]bool{
	"GetObject": true, "PutObject": true, "DeleteObject": true, "DeleteObjects": true,
	"HeadObject": true, "CopyObject": true, "GetObjectAcl": true, "PutObjectAcl": true,
	"GetObjectTagging": true, "PutObjectTagging": true, "DeleteObjectTagging": true,
	"GetObjectAttributes": true, "RestoreObject": true, "SelectObjectContent": true,
	"CreateMultipartUpload": true, "UploadPart": true, "UploadPartCopy": true,
	"CompleteMultipartUpload": true, "AbortMultipartUpload": true, "ListParts": true,
	"GetObjectRetention": true, "PutObjectRetention": true, "GetObjectLegalHold": true,
	"PutObjectLegalHold": true, "GetObjectTorrent": true, "ListObjects": true, "ListObjectsV2": true,
	"ListObjectVersions": true,
}

// dynamoDBItemOperations are DynamoDB data-plane calls. Never written after init.
var dynamoDBItemOperations = map[string]bool{
	"GetItem": true, "PutItem": true, "DeleteItem": true, "UpdateItem": true,
	"Query": true, "Scan": true, "BatchGetItem": true, "BatchWriteItem": true,
	"TransactGetItems": true, "TransactWriteItems": true, "ExecuteStatement": true,
	"BatchExecuteStatement": true, "ExecuteTransaction": true,
}
