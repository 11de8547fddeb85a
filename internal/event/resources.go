package event

import (
	"slices"
	"strings"
)

// How CloudTrail's event history fills Event.Resources, and how Cairn
// reproduces it.
//
// Event history does not copy the record's resources[] array. It derives
// resources from the request parameters and response elements of each API,
// and reports ResourceName exactly as the caller passed it (a name, an ID or
// an ARN). Published `lookup-events` output shows it, for example:
//
//   - sts AssumeRole: AWS::IAM::AccessKey (responseElements.credentials.accessKeyId),
//     AWS::STS::AssumedRole three times (requestParameters.roleSessionName,
//     responseElements.assumedRoleUser.assumedRoleId and .arn) and
//     AWS::IAM::Role (requestParameters.roleArn, an ARN);
//   - kms Decrypt invoked by a service: Resources is empty even though the
//     record's resources[] names the KMS key (Decrypt had no keyId parameter).
//
// AWS does not publish its per-API extraction table, so Cairn keeps its own
// read-only table below, keyed by eventSource: the parameters that name the
// resource an API acts on, for the services Cairn's users audit most. For an
// eventSource the table does not know at all, Cairn falls back to the
// record's resources[] (type, ARN as the name) rather than show nothing.

// resourceRule says: in events of this source (and, if events is set, only
// these event names), the value found at path in the request parameters (or
// response elements when resp is set) names a resource of type typ.
//
// A path step that meets an array applies the rest of the path to each
// element, so {"instancesSet","items","instanceId"} reaches every instance of
// an EC2 instancesSet. The value found may be a string or an array of strings.
type resourceRule struct {
	events []string
	resp   bool
	path   []string
	typ    string
}

func req(typ string, path ...string) resourceRule { return resourceRule{path: path, typ: typ} }
func resp(typ string, path ...string) resourceRule {
	return resourceRule{resp: true, path: path, typ: typ}
}
func only(events []string, r resourceRule) resourceRule { r.events = events; return r }

// Event-name sets for the services where one parameter name means different
// things in different APIs.
var (
	trailEvents = []string{"CreateTrail", "UpdateTrail", "DeleteTrail", "StartLogging", "StopLogging",
		"GetTrail", "GetTrailStatus", "PutEventSelectors", "GetEventSelectors", "PutInsightSelectors",
		"GetInsightSelectors"}
	ssmParameterEvents = []string{"GetParameter", "GetParameters", "PutParameter", "DeleteParameter",
		"DeleteParameters", "GetParameterHistory", "LabelParameterVersion", "UnlabelParameterVersion"}
	ssmDocumentEvents = []string{"CreateDocument", "UpdateDocument", "DeleteDocument", "GetDocument",
		"DescribeDocument", "ModifyDocumentPermission", "DescribeDocumentPermission", "UpdateDocumentDefaultVersion"}
	stsAssumeEvents = []string{"AssumeRole", "AssumeRoleWithSAML", "AssumeRoleWithWebIdentity"}
)

// resourceRules is the read-only extraction table, per eventSource. Order
// within a source is the order resources are reported in.
var resourceRules = map[string][]resourceRule{
	"iam.amazonaws.com": {
		resp("AWS::IAM::AccessKey", "accessKey", "accessKeyId"),
		req("AWS::IAM::AccessKey", "accessKeyId"),
		req("AWS::IAM::User", "userName"),
		req("AWS::IAM::Role", "roleName"),
		req("AWS::IAM::Group", "groupName"),
		req("AWS::IAM::Policy", "policyArn"),
		req("AWS::IAM::InstanceProfile", "instanceProfileName"),
		req("AWS::IAM::SAMLProvider", "sAMLProviderArn"),
		req("AWS::IAM::OIDCProvider", "openIDConnectProviderArn"),
	},
	"sts.amazonaws.com": {
		resp("AWS::IAM::AccessKey", "credentials", "accessKeyId"),
		only(stsAssumeEvents, req("AWS::STS::AssumedRole", "roleSessionName")),
		resp("AWS::STS::AssumedRole", "assumedRoleUser", "assumedRoleId"),
		resp("AWS::STS::AssumedRole", "assumedRoleUser", "arn"),
		only(stsAssumeEvents, req("AWS::IAM::Role", "roleArn")),
		only([]string{"GetFederationToken"}, req("AWS::STS::FederatedUser", "name")),
		resp("AWS::STS::FederatedUser", "federatedUser", "federatedUserId"),
		resp("AWS::STS::FederatedUser", "federatedUser", "arn"),
	},
	"s3.amazonaws.com": {
		req("AWS::S3::Bucket", "bucketName"),
	},
	"ec2.amazonaws.com": {
		req("AWS::EC2::Instance", "instanceId"),
		req("AWS::EC2::Instance", "instancesSet", "items", "instanceId"),
		resp("AWS::EC2::Instance", "instancesSet", "items", "instanceId"),
		req("AWS::EC2::SecurityGroup", "groupId"),
		resp("AWS::EC2::SecurityGroup", "groupId"),
		req("AWS::EC2::Ami", "imageId"),
		req("AWS::EC2::Ami", "instancesSet", "items", "imageId"),
		resp("AWS::EC2::Ami", "imageId"),
		req("AWS::EC2::Snapshot", "snapshotId"),
		resp("AWS::EC2::Snapshot", "snapshotId"),
		req("AWS::EC2::Volume", "volumeId"),
		resp("AWS::EC2::Volume", "volumeId"),
		req("AWS::EC2::VPC", "vpcId"),
		req("AWS::EC2::Subnet", "subnetId"),
		req("AWS::EC2::KeyPair", "keyName"),
		req("AWS::EC2::NetworkInterface", "networkInterfaceId"),
		req("AWS::EC2::InternetGateway", "internetGatewayId"),
		req("AWS::EC2::RouteTable", "routeTableId"),
		// EC2's newer query APIs log the raw request shape.
		req("AWS::EC2::FlowLog", "DeleteFlowLogsRequest", "FlowLogId", "content"),
	},
	"ec2-instance-connect.amazonaws.com": {
		req("AWS::EC2::Instance", "instanceId"),
	},
	"ssm.amazonaws.com": {
		req("AWS::EC2::Instance", "instanceId"),
		req("AWS::EC2::Instance", "instanceIds"),
		only([]string{"StartSession"}, req("AWS::EC2::Instance", "target")),
		only(ssmParameterEvents, req("AWS::SSM::Parameter", "name")),
		only(ssmParameterEvents, req("AWS::SSM::Parameter", "names")),
		req("AWS::SSM::Document", "documentName"),
		only(ssmDocumentEvents, req("AWS::SSM::Document", "name")),
	},
	"cloudtrail.amazonaws.com": {
		only(trailEvents, req("AWS::CloudTrail::Trail", "name")),
		only(trailEvents, req("AWS::CloudTrail::Trail", "trailName")),
	},
	"kms.amazonaws.com": {
		req("AWS::KMS::Key", "keyId"),
		resp("AWS::KMS::Key", "keyMetadata", "keyId"),
		req("AWS::KMS::Alias", "aliasName"),
	},
	"lambda.amazonaws.com": {
		req("AWS::Lambda::Function", "functionName"),
		req("AWS::Lambda::Function", "fullyQualifiedArn", "relativeId", "functionName"),
		resp("AWS::Lambda::Function", "functionName"),
		req("AWS::Lambda::LayerVersion", "layerName"),
	},
	"secretsmanager.amazonaws.com": {
		req("AWS::SecretsManager::Secret", "secretId"),
		req("AWS::SecretsManager::Secret", "secretIdList"),
		only([]string{"CreateSecret"}, req("AWS::SecretsManager::Secret", "name")),
	},
	"rds.amazonaws.com": {
		req("AWS::RDS::DBSnapshot", "dBSnapshotIdentifier"),
		req("AWS::RDS::DBClusterSnapshot", "dBClusterSnapshotIdentifier"),
		req("AWS::RDS::DBInstance", "dBInstanceIdentifier"),
		req("AWS::RDS::DBCluster", "dBClusterIdentifier"),
	},
	"route53resolver.amazonaws.com": {
		req("AWS::Route53Resolver::ResolverQueryLoggingConfig", "resolverQueryLogConfigId"),
	},
	"rolesanywhere.amazonaws.com": {
		only([]string{"CreateTrustAnchor"}, req("AWS::RolesAnywhere::TrustAnchor", "name")),
		only([]string{"CreateProfile"}, req("AWS::RolesAnywhere::Profile", "name")),
		req("AWS::IAM::Role", "roleArns"),
	},
	"bedrock.amazonaws.com": {
		req("AWS::Bedrock::Model", "modelId"),
	},
	"logs.amazonaws.com": {
		req("AWS::Logs::LogGroup", "logGroupName"),
		req("AWS::Logs::LogStream", "logStreamName"),
	},
	"ecr.amazonaws.com": {
		req("AWS::ECR::Repository", "repositoryName"),
	},
	"sns.amazonaws.com": {
		req("AWS::SNS::Topic", "topicArn"),
	},
	"sqs.amazonaws.com": {
		req("AWS::SQS::Queue", "queueUrl"),
	},
	"dynamodb.amazonaws.com": {
		req("AWS::DynamoDB::Table", "tableName"),
	},
	"guardduty.amazonaws.com": {
		req("AWS::GuardDuty::Detector", "detectorId"),
	},
	"config.amazonaws.com": {
		req("AWS::Config::ConfigurationRecorder", "configurationRecorderName"),
	},
}

// lookupResources computes the event-history resources of a record.
func lookupResources(source, eventName string, reqParams, respElems []byte, recRes []Resource) []Resource {
	rules, known := resourceRules[source]
	if !known {
		out := make([]Resource, 0, len(recRes))
		for _, rr := range recRes {
			if rr.Type == "" || rr.ARN == "" {
				continue
			}
			out = appendUnique(out, Resource{Type: rr.Type, Name: rr.ARN, ARN: rr.ARN, AccountID: rr.AccountID})
		}
		if len(out) == 0 {
			return nil
		}
		return out
	}
	var out []Resource
	for _, rule := range rules {
		if rule.events != nil && !slices.Contains(rule.events, eventName) {
			continue
		}
		src := reqParams
		if rule.resp {
			src = respElems
		}
		if len(src) == 0 || src[0] != '{' {
			continue
		}
		typ := rule.typ
		walkPath(src, rule.path, func(v string) {
			if v == "" {
				return
			}
			res := Resource{Type: typ, Name: v}
			if strings.HasPrefix(v, "arn:") {
				res.ARN = v
			}
			out = appendUnique(out, res)
		})
	}
	return out
}

// walkPath calls fn for every string found at path under v.
func walkPath(v []byte, path []string, fn func(string)) {
	if len(v) == 0 {
		return
	}
	switch v[0] {
	case '[':
		eachElem(v, func(e []byte) { walkPath(e, path, fn) })
		return
	case '{':
		if len(path) == 0 {
			return
		}
		if m := getMember(v, path[0]); m != nil {
			walkPath(m, path[1:], fn)
		}
		return
	case '"':
		if len(path) == 0 {
			fn(str(v))
		}
	}
}

func appendUnique(out []Resource, r Resource) []Resource {
	for _, o := range out {
		if o.Type == r.Type && o.Name == r.Name {
			return out
		}
	}
	return append(out, r)
}

// recordResources reads the record's resources[] array. Note the
// upper-case "ARN" key (CloudTrail's spelling); "arn" is accepted too.
func recordResources(v []byte) []Resource {
	if len(v) < 2 || v[0] != '[' {
		return nil
	}
	var out []Resource
	eachElem(v, func(e []byte) {
		if len(e) == 0 || e[0] != '{' {
			return
		}
		var r Resource
		eachMember(e, func(k, val []byte) bool {
			if containsBackslash(k) {
				k = []byte(unescape(k))
			}
			switch string(k) {
			case "type":
				r.Type = str(val)
			case "ARN", "arn":
				r.ARN = str(val)
			case "accountId":
				r.AccountID = str(val)
			}
			return true
		})
		if r.Type == "" {
			r.Type = typeFromARN(r.ARN)
		}
		r.Name = r.ARN
		out = append(out, r)
	})
	return out
}

// arnTypes maps "<service>:<resource-type>" of an ARN to a CloudFormation
// style resource type, for resources[] entries that come without a type
// (SSM GetParameters writes only ARN and accountId).
var arnTypes = map[string]string{
	"ssm:parameter":             "AWS::SSM::Parameter",
	"ssm:document":              "AWS::SSM::Document",
	"iam:user":                  "AWS::IAM::User",
	"iam:role":                  "AWS::IAM::Role",
	"iam:group":                 "AWS::IAM::Group",
	"iam:policy":                "AWS::IAM::Policy",
	"iam:instance-profile":      "AWS::IAM::InstanceProfile",
	"sts:assumed-role":          "AWS::STS::AssumedRole",
	"sts:federated-user":        "AWS::STS::FederatedUser",
	"lambda:function":           "AWS::Lambda::Function",
	"secretsmanager:secret":     "AWS::SecretsManager::Secret",
	"kms:key":                   "AWS::KMS::Key",
	"kms:alias":                 "AWS::KMS::Alias",
	"ec2:instance":              "AWS::EC2::Instance",
	"ec2:security-group":        "AWS::EC2::SecurityGroup",
	"ec2:snapshot":              "AWS::EC2::Snapshot",
	"ec2:image":                 "AWS::EC2::Ami",
	"ec2:volume":                "AWS::EC2::Volume",
	"cloudtrail:trail":          "AWS::CloudTrail::Trail",
	"cloudtrail:eventdatastore": "AWS::CloudTrail::EventDataStore",
	"dynamodb:table":            "AWS::DynamoDB::Table",
	"logs:log-group":            "AWS::Logs::LogGroup",
	"ecr:repository":            "AWS::ECR::Repository",
	"rds:db":                    "AWS::RDS::DBInstance",
	"rds:snapshot":              "AWS::RDS::DBSnapshot",
}

// typeFromARN infers a resource type from an ARN, or "".
func typeFromARN(arn string) string {
	parts := strings.SplitN(arn, ":", 6)
	if len(parts) != 6 || parts[0] != "arn" {
		return ""
	}
	service, res := parts[2], parts[5]
	switch service {
	case "s3":
		if strings.Contains(res, "/") {
			return "AWS::S3::Object"
		}
		return "AWS::S3::Bucket"
	case "sns":
		return "AWS::SNS::Topic"
	case "sqs":
		return "AWS::SQS::Queue"
	}
	kind := res
	if i := strings.IndexAny(res, "/:"); i >= 0 {
		kind = res[:i]
	}
	return arnTypes[service+":"+kind]
}
