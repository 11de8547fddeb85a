package bench

import "strconv"

// operation is one API in the generator's mix. weight is relative
// frequency; build fills the call's request parameters, response elements
// and resources. Parameter names follow CloudTrail's records, so that
// Cairn's event history extracts the same resources AWS would.
type operation struct {
	source   string
	name     string
	readOnly bool
	weight   float64
	build    func(g *Generator, c *call)
}

func op(source, name string, readOnly bool, weight float64, build func(g *Generator, c *call)) *operation {
	if build == nil {
		build = func(*Generator, *call) {}
	}
	return &operation{source: source, name: name, readOnly: readOnly, weight: weight, build: build}
}

// obj starts a request-parameters object in g.req.
func (g *Generator) obj() []byte { return append(g.req[:0], '{') }

// str1 is the common one-string-member object {"name":"value"}.
func (g *Generator) str1(name, value string) []byte {
	b := append(g.req[:0], '{', '"')
	b = append(b, name...)
	b = append(b, '"', ':')
	b = appendString(b, value)
	return append(b, '}')
}

// filters appends an EC2 filterSet with n items; most Describe polls carry
// none, some a few, and a few (inventory scripts) dozens: one source of
// the size distribution's long tail.
func (g *Generator) filters(b []byte) []byte {
	n := 0
	switch x := g.rng.IntN(1000); {
	case x < 700:
		return b
	case x < 980:
		n = 1 + g.rng.IntN(3)
	default:
		n = 10 + g.rng.IntN(60)
	}
	if len(b) > 1 {
		b = append(b, ',')
	}
	b = append(b, `"filterSet":{"items":[`...)
	for i := 0; i < n; i++ {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"name":"tag:`...)
		b = append(b, words[g.rng.IntN(len(words))]...)
		b = append(b, `","valueSet":{"items":[{"value":`...)
		b = appendString(b, g.pick("instance"))
		b = append(b, `}]}}`...)
	}
	return append(b, `]}`...)
}

// bigDocument appends a URL-encoded policy document of n statements, the
// way IAM and S3 log policies: the rare events of tens of KB.
func (g *Generator) bigDocument(b []byte, statements int) []byte {
	b = append(b, `"%7B%22Version%22%3A%222012-10-17%22%2C%22Statement%22%3A%5B`...)
	for i := 0; i < statements; i++ {
		if i > 0 {
			b = append(b, "%2C"...)
		}
		b = append(b, `%7B%22Sid%22%3A%22Stmt`...)
		b = strconv.AppendInt(b, int64(i), 10)
		b = append(b, `%22%2C%22Effect%22%3A%22Allow%22%2C%22Action%22%3A%5B%22s3%3AGetObject%22%2C%22s3%3APutObject%22%5D%2C%22Resource%22%3A%22arn%3Aaws%3As3%3A%3A%3A`...)
		b = append(b, g.pick("bucket")...)
		b = append(b, `%2F`...)
		b = append(b, words[g.rng.IntN(len(words))]...)
		b = append(b, `%2F%2A%22%2C%22Condition%22%3A%7B%22StringEquals%22%3A%7B%22aws%3APrincipalOrgID%22%3A%22o-`...)
		b = g.appendToken(b, 10)
		b = append(b, `%22%7D%7D%7D`...)
	}
	return append(b, `%5D%7D"`...)
}

// bigSize draws the statement count of a large document: mostly a few KB,
// now and then tens of KB (each statement is about 330 bytes).
func (g *Generator) bigSize() int {
	if g.rng.IntN(10) == 0 {
		return 60 + g.rng.IntN(120)
	}
	return 3 + g.rng.IntN(25)
}

func (g *Generator) kmsARN(id string) string {
	return "arn:aws:kms:" + g.opts.Region + ":" + g.opts.AccountID + ":key/" + id
}

// catalog is the operation mix. Weights follow the data sets (SSM agent
// polls, EC2 Describe calls, STS and KMS traffic dominate) and what busy
// accounts show; destructive and security-relevant calls are rare, which
// is exactly what investigators look them up for.
func catalog() []*operation {
	const (
		ec2  = "ec2.amazonaws.com"
		ssm  = "ssm.amazonaws.com"
		sts  = "sts.amazonaws.com"
		s3   = "s3.amazonaws.com"
		iam  = "iam.amazonaws.com"
		kms  = "kms.amazonaws.com"
		lmb  = "lambda.amazonaws.com"
		sm   = "secretsmanager.amazonaws.com"
		logs = "logs.amazonaws.com"
		ct   = "cloudtrail.amazonaws.com"
		ecr  = "ecr.amazonaws.com"
		elb  = "elasticloadbalancing.amazonaws.com"
		rds  = "rds.amazonaws.com"
		ddb  = "dynamodb.amazonaws.com"
		mon  = "monitoring.amazonaws.com"
	)
	instanceSet := func(g *Generator, c *call) {
		b := g.obj()
		b = append(b, `"instancesSet":{"items":[`...)
		n := 1
		if g.rng.IntN(5) == 0 {
			n += g.rng.IntN(8)
		}
		for i := 0; i < n; i++ {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"instanceId":`...)
			b = appendString(b, g.pick("instance"))
			b = append(b, '}')
		}
		b = append(b, `]}`...)
		b = g.filters(b)
		c.req = append(b, '}')
	}
	describe := func(extra func(g *Generator, b []byte) []byte) func(g *Generator, c *call) {
		return func(g *Generator, c *call) {
			b := g.obj()
			if extra != nil {
				b = extra(g, b)
			}
			b = g.filters(b)
			c.req = append(b, '}')
		}
	}
	maxResults := func(g *Generator, b []byte) []byte {
		return append(b, `"maxResults":1000`...)
	}
	instanceChange := func(state string) func(g *Generator, c *call) {
		return func(g *Generator, c *call) {
			id := g.pick("instance")
			b := g.obj()
			b = append(b, `"instancesSet":{"items":[{"instanceId":`...)
			b = appendString(b, id)
			c.req = append(b, `}]}}`...)
			r := append(g.resp[:0], `{"requestId":`...)
			r = appendString(r, c.requestID)
			r = append(r, `,"instancesSet":{"items":[{"instanceId":`...)
			r = appendString(r, id)
			r = append(r, `,"currentState":{"code":0,"name":"`...)
			r = append(r, state...)
			r = append(r, `"},"previousState":{"code":16,"name":"running"}}]}}`...)
			c.resp = r
		}
	}
	return []*operation{
		// EC2
		op(ec2, "DescribeInstances", true, 10, instanceSet),
		op(ec2, "DescribeInstanceStatus", true, 4, instanceSet),
		op(ec2, "DescribeVolumes", true, 4, describe(maxResults)),
		op(ec2, "DescribeSecurityGroups", true, 3, describe(nil)),
		op(ec2, "DescribeSnapshots", true, 1, describe(func(g *Generator, b []byte) []byte {
			return append(b, `"ownersSet":{"items":[{"owner":"self"}]},"sharedUsersSet":{},"maxResults":1000`...)
		})),
		op(ec2, "DescribeInstanceAttribute", true, 2, func(g *Generator, c *call) {
			b := g.obj()
			b = append(b, `"instanceId":`...)
			b = appendString(b, g.pick("instance"))
			c.req = append(b, `,"attribute":"userData"}`...)
		}),
		op(ec2, "DescribeAddresses", true, 1, describe(nil)),
		op(ec2, "DescribeTags", true, 2, describe(maxResults)),
		op(ec2, "DescribeVpcs", true, 1, describe(nil)),
		op(ec2, "DescribeSubnets", true, 1, describe(nil)),
		op(ec2, "DescribeImages", true, 1, describe(func(g *Generator, b []byte) []byte {
			b = append(b, `"imagesSet":{"items":[{"imageId":`...)
			b = appendString(b, g.pick("ami"))
			return append(b, `}]}`...)
		})),
		op(ec2, "RunInstances", false, 0.3, func(g *Generator, c *call) {
			b := g.obj()
			b = append(b, `"instancesSet":{"items":[{"imageId":`...)
			b = appendString(b, g.pick("ami"))
			b = append(b, `,"minCount":1,"maxCount":1}]},"instanceType":"m6i.large","blockDeviceMapping":{},"monitoring":{"enabled":false},"disableApiTermination":false,"subnetId":`...)
			b = appendString(b, g.pick("subnet"))
			b = append(b, `,"clientToken":`...)
			b = appendString(b, g.uuid())
			if g.rng.IntN(3) == 0 {
				// User data is logged (base64) when small enough: scripts of a few KB.
				b = append(b, `,"userData":"`...)
				b = g.appendToken(b, 1000+g.rng.IntN(12000))
				b = append(b, '"')
			}
			c.req = append(b, '}')
			id := g.pick("instance")
			r := append(g.resp[:0], `{"requestId":`...)
			r = appendString(r, c.requestID)
			r = append(r, `,"reservationId":`...)
			r = appendString(r, g.hexID("r-0", 16))
			r = append(r, `,"ownerId":`...)
			r = appendString(r, g.opts.AccountID)
			r = append(r, `,"groupSet":{},"instancesSet":{"items":[{"instanceId":`...)
			r = appendString(r, id)
			r = append(r, `,"imageId":`...)
			r = appendString(r, g.pick("ami"))
			r = append(r, `,"currentInstanceBootMode":"uefi","instanceState":{"code":0,"name":"pending"},"privateDnsName":"ip-10-0-`...)
			r = appendInt(r, g.rng.IntN(255))
			r = append(r, `-`...)
			r = appendInt(r, g.rng.IntN(255))
			r = append(r, `.ec2.internal","amiLaunchIndex":0,"productCodes":{},"instanceType":"m6i.large","launchTime":1722511823000,"placement":{"availabilityZone":"`...)
			r = append(r, g.opts.Region...)
			r = append(r, `a","tenancy":"default"},"monitoring":{"state":"disabled"},"subnetId":`...)
			r = appendString(r, g.pick("subnet"))
			r = append(r, `,"vpcId":`...)
			r = appendString(r, g.pick("vpc"))
			r = append(r, `,"stateReason":{"code":"pending","message":"pending"},"architecture":"x86_64","rootDeviceType":"ebs","rootDeviceName":"/dev/xvda","blockDeviceMapping":{},"virtualizationType":"hvm","hypervisor":"xen","groupSet":{"items":[{"groupId":`...)
			r = appendString(r, g.pick("sg"))
			r = append(r, `,"groupName":"default"}]},"sourceDestCheck":true,"networkInterfaceSet":{},"ebsOptimized":false,"enaSupport":true,"metadataOptions":{"state":"pending","httpTokens":"required","httpPutResponseHopLimit":2,"httpEndpoint":"enabled"}}]}}`...)
			c.resp = r
		}),
		op(ec2, "TerminateInstances", false, 0.15, instanceChange("shutting-down")),
		op(ec2, "StopInstances", false, 0.2, instanceChange("stopping")),
		op(ec2, "StartInstances", false, 0.2, instanceChange("pending")),
		op(ec2, "CreateTags", false, 1, func(g *Generator, c *call) {
			b := g.obj()
			b = append(b, `"resourcesSet":{"items":[{"resourceId":`...)
			b = appendString(b, g.pick("instance"))
			b = append(b, `}]},"tagSet":{"items":[`...)
			n := 1 + g.rng.IntN(12)
			for i := 0; i < n; i++ {
				if i > 0 {
					b = append(b, ',')
				}
				b = append(b, `{"key":"`...)
				b = append(b, words[(i+g.rng.IntN(3))%len(words)]...)
				b = append(b, `","value":`...)
				b = appendString(b, envs[g.rng.IntN(len(envs))])
				b = append(b, '}')
			}
			c.req = append(b, `]}}`...)
			r := append(g.resp[:0], `{"requestId":`...)
			r = appendString(r, c.requestID)
			c.resp = append(r, `,"_return":true}`...)
		}),
		op(ec2, "AuthorizeSecurityGroupIngress", false, 0.2, func(g *Generator, c *call) {
			b := g.obj()
			b = append(b, `"groupId":`...)
			b = appendString(b, g.pick("sg"))
			b = append(b, `,"ipPermissions":{"items":[{"ipProtocol":"tcp","fromPort":22,"toPort":22,"groups":{},"ipRanges":{"items":[{"cidrIp":"0.0.0.0/0"}]},"ipv6Ranges":{},"prefixListIds":{}}]}}`...)
			c.req = b
		}),
		op(ec2, "CreateSnapshot", false, 0.1, func(g *Generator, c *call) {
			c.req = g.str1("volumeId", g.pick("volume"))
		}),
		op(ec2, "ModifySnapshotAttribute", false, 0.01, func(g *Generator, c *call) {
			b := g.obj()
			b = append(b, `"snapshotId":`...)
			b = appendString(b, g.pick("snapshot"))
			c.req = append(b, `,"createVolumePermission":{"add":{"items":[{"userId":"999999999999"}]}},"attributeType":"CREATE_VOLUME_PERMISSION"}`...)
		}),
		op(ec2, "GetPasswordData", true, 0.05, func(g *Generator, c *call) {
			c.req = g.str1("instanceId", g.pick("instance"))
		}),
		op(ec2, "ModifyInstanceAttribute", false, 0.05, func(g *Generator, c *call) {
			b := g.obj()
			b = append(b, `"instanceId":`...)
			b = appendString(b, g.pick("instance"))
			b = append(b, `,"userData":"<sensitiveDataRemoved>"`...)
			c.req = append(b, '}')
		}),

		// SSM
		op(ssm, "DescribeInstanceInformation", true, 12, describe(func(g *Generator, b []byte) []byte {
			return append(b, `"maxResults":50`...)
		})),
		op(ssm, "UpdateInstanceInformation", false, 3, func(g *Generator, c *call) {
			b := g.obj()
			b = append(b, `"instanceId":`...)
			b = appendString(b, g.pick("instance"))
			b = append(b, `,"agentVersion":"3.3.131.0","agentStatus":"Active","platformType":"Linux","platformName":"Amazon Linux","platformVersion":"2023","iPAddress":"10.0.`...)
			b = appendInt(b, g.rng.IntN(255))
			b = append(b, `.`...)
			b = appendInt(b, g.rng.IntN(255))
			c.req = append(b, `","computerName":"ip-10-0-1-23.ec2.internal","agentName":"amazon-ssm-agent","availabilityZone":"us-east-1a","availabilityZoneId":"use1-az4"}`...)
		}),
		op(ssm, "GetCommandInvocation", true, 2, func(g *Generator, c *call) {
			b := g.obj()
			b = append(b, `"commandId":`...)
			b = appendString(b, g.uuid())
			b = append(b, `,"instanceId":`...)
			b = appendString(b, g.pick("instance"))
			c.req = append(b, '}')
		}),
		op(ssm, "SendCommand", false, 0.4, func(g *Generator, c *call) {
			b := g.obj()
			b = append(b, `"instanceIds":[`...)
			b = appendString(b, g.pick("instance"))
			b = append(b, `],"documentName":"AWS-RunShellScript","parameters":"HIDDEN_DUE_TO_SECURITY_REASONS","interactive":false}`...)
			c.req = b
		}),
		op(ssm, "GetParameter", true, 5, func(g *Generator, c *call) {
			b := g.obj()
			b = append(b, `"name":`...)
			b = appendString(b, g.pick("param"))
			c.req = append(b, `,"withDecryption":true}`...)
		}),
		op(ssm, "GetParameters", true, 2, func(g *Generator, c *call) {
			b := g.obj()
			b = append(b, `"names":[`...)
			for i, n := 0, 1+g.rng.IntN(5); i < n; i++ {
				if i > 0 {
					b = append(b, ',')
				}
				b = appendString(b, g.pick("param"))
			}
			c.req = append(b, `],"withDecryption":true}`...)
		}),
		op(ssm, "PutParameter", false, 0.2, func(g *Generator, c *call) {
			b := g.obj()
			b = append(b, `"name":`...)
			b = appendString(b, g.pick("param"))
			c.req = append(b, `,"type":"SecureString","overwrite":true,"tier":"Standard"}`...)
			c.resp = append(g.resp[:0], `{"version":7,"tier":"Standard"}`...)
		}),
		op(ssm, "StartSession", false, 0.1, func(g *Generator, c *call) {
			c.req = g.str1("target", g.pick("instance"))
			b := append(g.resp[:0], `{"sessionId":`...)
			b = appendString(b, c.who.userName+"-"+g.hexID("0", 16))
			b = append(b, `,"tokenValue":"Value hidden due to security reasons.","streamUrl":"wss://ssmmessages.`...)
			b = append(b, g.opts.Region...)
			c.resp = append(b, `.amazonaws.com/v1/data-channel/session"}`...)
		}),

		// STS
		op(sts, "AssumeRole", true, 8, func(g *Generator, c *call) {
			roleARN := g.pick("rolearn")
			session := "session-" + strconv.Itoa(g.rng.IntN(5000))
			b := g.obj()
			b = append(b, `"roleArn":`...)
			b = appendString(b, roleARN)
			b = append(b, `,"roleSessionName":`...)
			b = appendString(b, session)
			c.req = append(b, `,"durationSeconds":3600}`...)
			key := g.upperID("ASIA", 16)
			roleID := g.upperID("AROA", 17)
			r := append(g.resp[:0], `{"credentials":{"accessKeyId":`...)
			r = appendString(r, key)
			r = append(r, `,"sessionToken":"`...)
			r = g.appendToken(r, 120)
			r = append(r, `","expiration":"Aug 1, 2024, 12:30:22 PM"},"assumedRoleUser":{"assumedRoleId":`...)
			r = appendString(r, roleID+":"+session)
			r = append(r, `,"arn":`...)
			r = appendString(r, roleARN+"/"+session)
			c.resp = append(r, `}}`...)
			c.resources = append(c.resources, resRef{"AWS::IAM::Role", roleARN})
			c.extra = []byte(`{"RoleSessionName":"` + session + `"}`)
		}),
		op(sts, "GetCallerIdentity", true, 3, nil),
		op(sts, "AssumeRoleWithWebIdentity", true, 1.5, func(g *Generator, c *call) {
			b := g.obj()
			b = append(b, `"roleArn":`...)
			b = appendString(b, g.pick("rolearn"))
			b = append(b, `,"roleSessionName":"`...)
			b = appendInt(b, 1700000000+g.rng.IntN(9999999))
			c.req = append(b, `"}`...)
		}),
		op(sts, "GetSessionToken", true, 0.2, nil),

		// S3 (bucket-level management events)
		op(s3, "ListBuckets", true, 2, func(g *Generator, c *call) {
			c.req = append(g.req[:0], `{"Host":"s3.amazonaws.com"}`...)
			c.extra = []byte(`{"SignatureVersion":"SigV4","CipherSuite":"TLS_AES_128_GCM_SHA256","bytesTransferredIn":0,"AuthenticationMethod":"AuthHeader","x-amz-id-2":"lhs0T1VW0x7d9c2dKQe2RKSjxwSNpRN4OG7Ns5qz9Pe5hDs5tN0Xs5pwpxl7OkEZ","bytesTransferredOut":2114}`)
		}),
		op(s3, "GetBucketLocation", true, 2, s3Bucket("location")),
		op(s3, "GetBucketAcl", true, 2, s3Bucket("acl")),
		op(s3, "GetBucketPolicy", true, 1, s3Bucket("policy")),
		op(s3, "GetBucketVersioning", true, 1, s3Bucket("versioning")),
		op(s3, "GetBucketEncryption", true, 1, s3Bucket("encryption")),
		op(s3, "PutBucketPolicy", false, 0.08, func(g *Generator, c *call) {
			bucket := g.pick("bucket")
			b := g.obj()
			b = append(b, `"bucketPolicy":`...)
			b = g.bigDocument(b, g.bigSize())
			b = append(b, `,"bucketName":`...)
			b = appendString(b, bucket)
			b = append(b, `,"Host":`...)
			b = appendString(b, bucket+".s3.amazonaws.com")
			c.req = append(b, `,"policy":""}`...)
			c.resources = append(c.resources, resRef{"AWS::S3::Bucket", "arn:aws:s3:::" + bucket})
		}),
		op(s3, "PutBucketPublicAccessBlock", false, 0.03, s3Bucket("publicAccessBlock")),
		op(s3, "CreateBucket", false, 0.03, s3Bucket("")),
		op(s3, "DeleteBucket", false, 0.005, s3Bucket("")),

		// IAM
		op(iam, "GetUser", true, 1, func(g *Generator, c *call) {
			c.req = g.str1("userName", g.idByType[0][g.rng.IntN(len(g.idByType[0]))].userName)
		}),
		op(iam, "ListRoles", true, 0.8, nil),
		op(iam, "GetRole", true, 1.5, func(g *Generator, c *call) { c.req = g.str1("roleName", g.pick("role")) }),
		op(iam, "ListAttachedRolePolicies", true, 0.8, func(g *Generator, c *call) { c.req = g.str1("roleName", g.pick("role")) }),
		op(iam, "ListAccessKeys", true, 0.5, func(g *Generator, c *call) {
			c.req = g.str1("userName", g.idByType[0][g.rng.IntN(len(g.idByType[0]))].userName)
		}),
		op(iam, "CreateAccessKey", false, 0.03, func(g *Generator, c *call) {
			user := g.idByType[0][g.rng.IntN(len(g.idByType[0]))].userName
			c.req = g.str1("userName", user)
			r := append(g.resp[:0], `{"accessKey":{"accessKeyId":`...)
			r = appendString(r, g.upperID("AKIA", 16))
			r = append(r, `,"status":"Active","userName":`...)
			r = appendString(r, user)
			c.resp = append(r, `,"createDate":"Aug 1, 2024, 11:30:23 AM"}}`...)
		}),
		op(iam, "CreateUser", false, 0.02, func(g *Generator, c *call) {
			c.req = g.str1("userName", "tmp-"+g.hexID("", 8))
		}),
		op(iam, "DeleteUser", false, 0.01, func(g *Generator, c *call) {
			c.req = g.str1("userName", "tmp-"+g.hexID("", 8))
		}),
		op(iam, "AttachRolePolicy", false, 0.05, func(g *Generator, c *call) {
			b := g.obj()
			b = append(b, `"roleName":`...)
			b = appendString(b, g.pick("role"))
			b = append(b, `,"policyArn":`...)
			b = appendString(b, g.pick("policyarn"))
			c.req = append(b, '}')
		}),
		op(iam, "PutRolePolicy", false, 0.05, func(g *Generator, c *call) {
			b := g.obj()
			b = append(b, `"roleName":`...)
			b = appendString(b, g.pick("role"))
			b = append(b, `,"policyName":"inline-`...)
			b = append(b, words[g.rng.IntN(len(words))]...)
			b = append(b, `","policyDocument":`...)
			b = g.bigDocument(b, g.bigSize())
			c.req = append(b, '}')
		}),
		op(iam, "CreatePolicy", false, 0.05, func(g *Generator, c *call) {
			b := g.obj()
			b = append(b, `"policyName":"`...)
			b = append(b, words[g.rng.IntN(len(words))]...)
			b = append(b, `-access","policyDocument":`...)
			b = g.bigDocument(b, g.bigSize())
			c.req = append(b, '}')
		}),
		op(iam, "UpdateAssumeRolePolicy", false, 0.02, func(g *Generator, c *call) {
			b := g.obj()
			b = append(b, `"roleName":`...)
			b = appendString(b, g.pick("role"))
			b = append(b, `,"policyDocument":`...)
			b = g.bigDocument(b, 1+g.rng.IntN(4))
			c.req = append(b, '}')
		}),

		// KMS
		op(kms, "Decrypt", true, 6, func(g *Generator, c *call) {
			id := g.pick("kms")
			b := g.obj()
			b = append(b, `"encryptionAlgorithm":"SYMMETRIC_DEFAULT","encryptionContext":{"aws:lambda:FunctionArn":`...)
			b = appendString(b, "arn:aws:lambda:"+g.opts.Region+":"+g.opts.AccountID+":function:"+g.pick("function"))
			c.req = append(b, `}}`...)
			c.resources = append(c.resources, resRef{"AWS::KMS::Key", g.kmsARN(id)})
		}),
		op(kms, "GenerateDataKey", true, 3, func(g *Generator, c *call) {
			id := g.pick("kms")
			b := g.obj()
			b = append(b, `"keyId":`...)
			b = appendString(b, g.kmsARN(id))
			c.req = append(b, `,"keySpec":"AES_256"}`...)
			c.resources = append(c.resources, resRef{"AWS::KMS::Key", g.kmsARN(id)})
		}),
		op(kms, "DescribeKey", true, 1, func(g *Generator, c *call) { c.req = g.str1("keyId", g.pick("kms")) }),
		op(kms, "ScheduleKeyDeletion", false, 0.004, func(g *Generator, c *call) {
			id := g.pick("kms")
			b := g.obj()
			b = append(b, `"keyId":`...)
			b = appendString(b, id)
			c.req = append(b, `,"pendingWindowInDays":7}`...)
		}),
		op(kms, "DisableKey", false, 0.004, func(g *Generator, c *call) { c.req = g.str1("keyId", g.pick("kms")) }),

		// Lambda
		op(lmb, "GetFunction20150331v2", true, 0.8, func(g *Generator, c *call) { c.req = g.str1("functionName", g.pick("function")) }),
		op(lmb, "ListFunctions20150331", true, 0.5, nil),
		op(lmb, "UpdateFunctionCode20150331v2", false, 0.1, func(g *Generator, c *call) {
			b := g.obj()
			b = append(b, `"functionName":`...)
			b = appendString(b, g.pick("function"))
			c.req = append(b, `,"publish":false,"dryRun":false}`...)
		}),
		op(lmb, "UpdateFunctionConfiguration20150331v2", false, 0.1, func(g *Generator, c *call) {
			b := g.obj()
			b = append(b, `"functionName":`...)
			b = appendString(b, g.pick("function"))
			b = append(b, `,"environment":{"variables":{`...)
			for i, n := 0, 3+g.rng.IntN(30); i < n; i++ {
				if i > 0 {
					b = append(b, ',')
				}
				b = append(b, `"VAR_`...)
				b = appendInt(b, i)
				b = append(b, `":"`...)
				b = g.appendToken(b, 8+g.rng.IntN(40))
				b = append(b, '"')
			}
			c.req = append(b, `}}}`...)
		}),

		// Secrets Manager
		op(sm, "GetSecretValue", true, 4, func(g *Generator, c *call) { c.req = g.str1("secretId", g.pick("secret")) }),
		op(sm, "DescribeSecret", true, 1, func(g *Generator, c *call) { c.req = g.str1("secretId", g.pick("secret")) }),
		op(sm, "ListSecrets", true, 0.3, nil),
		op(sm, "PutSecretValue", false, 0.05, func(g *Generator, c *call) {
			b := g.obj()
			b = append(b, `"secretId":`...)
			b = appendString(b, g.pick("secret"))
			b = append(b, `,"clientRequestToken":`...)
			b = appendString(b, g.uuid())
			c.req = append(b, '}')
		}),
		op(sm, "DeleteSecret", false, 0.005, func(g *Generator, c *call) { c.req = g.str1("secretId", g.pick("secret")) }),

		// CloudWatch Logs
		op(logs, "CreateLogStream", false, 3, func(g *Generator, c *call) {
			b := g.obj()
			b = append(b, `"logGroupName":`...)
			b = appendString(b, g.pick("loggroup"))
			b = append(b, `,"logStreamName":"2024/08/01/[$LATEST]`...)
			b = append(b, g.hexID("", 32)...)
			c.req = append(b, `"}`...)
		}),
		op(logs, "DescribeLogGroups", true, 1, nil),
		op(logs, "DeleteLogGroup", false, 0.01, func(g *Generator, c *call) { c.req = g.str1("logGroupName", g.pick("loggroup")) }),

		// CloudTrail
		op(ct, "DescribeTrails", true, 0.5, nil),
		op(ct, "GetTrailStatus", true, 0.5, func(g *Generator, c *call) { c.req = g.str1("name", g.pick("trail")) }),
		op(ct, "LookupEvents", true, 0.3, func(g *Generator, c *call) {
			c.req = append(g.req[:0], `{"maxResults":50,"lookupAttributes":[{"attributeKey":"EventName","attributeValue":"ConsoleLogin"}]}`...)
		}),
		op(ct, "StopLogging", false, 0.003, func(g *Generator, c *call) { c.req = g.str1("name", g.pick("trail")) }),
		op(ct, "DeleteTrail", false, 0.002, func(g *Generator, c *call) { c.req = g.str1("name", g.pick("trail")) }),

		// Others
		op(ecr, "GetAuthorizationToken", true, 1.5, nil),
		op(ecr, "BatchGetImage", true, 0.8, func(g *Generator, c *call) {
			b := g.obj()
			b = append(b, `"repositoryName":`...)
			b = appendString(b, g.pick("repo"))
			b = append(b, `,"imageIds":[{"imageTag":"`...)
			b = append(b, g.hexID("", 7)...)
			c.req = append(b, `"}],"acceptedMediaTypes":["application/vnd.docker.distribution.manifest.v2+json"]}`...)
		}),
		op(elb, "DescribeTargetHealth", true, 1, func(g *Generator, c *call) {
			c.req = g.str1("targetGroupArn", g.pick("lb"))
			c.resources = append(c.resources, resRef{"AWS::ElasticLoadBalancingV2::LoadBalancer", g.pick("lb")})
		}),
		op(elb, "DescribeLoadBalancers", true, 1, nil),
		op(rds, "DescribeDBInstances", true, 0.8, func(g *Generator, c *call) { c.req = g.str1("dBInstanceIdentifier", g.pick("db")) }),
		op(rds, "CreateDBSnapshot", false, 0.02, func(g *Generator, c *call) {
			b := g.obj()
			b = append(b, `"dBInstanceIdentifier":`...)
			b = appendString(b, g.pick("db"))
			b = append(b, `,"dBSnapshotIdentifier":"manual-`...)
			b = append(b, g.hexID("", 8)...)
			c.req = append(b, `"}`...)
		}),
		op(ddb, "DescribeTable", true, 1, func(g *Generator, c *call) { c.req = g.str1("tableName", g.pick("table")) }),
		op(mon, "DescribeAlarms", true, 1, func(g *Generator, c *call) {
			c.req = append(g.req[:0], `{"maxRecords":100}`...)
		}),
		op("signin.amazonaws.com", "ConsoleLogin", false, 0.1, func(g *Generator, c *call) {
			c.eventType = "AwsConsoleSignIn"
			c.requestID = ""
			c.resp = append(g.resp[:0], `{"ConsoleLogin":"Success"}`...)
			mfa := "No"
			if c.who.mfa {
				mfa = "Yes"
			}
			c.extra = []byte(`{"LoginTo":"https://console.aws.amazon.com/console/home","MobileVersion":"No","MFAUsed":"` + mfa + `"}`)
		}),
	}
}

func s3Bucket(sub string) func(g *Generator, c *call) {
	return func(g *Generator, c *call) {
		bucket := g.pick("bucket")
		b := g.obj()
		b = append(b, `"bucketName":`...)
		b = appendString(b, bucket)
		b = append(b, `,"Host":`...)
		b = appendString(b, bucket+".s3."+g.opts.Region+".amazonaws.com")
		if sub != "" {
			b = append(b, `,"`...)
			b = append(b, sub...)
			b = append(b, `":""`...)
		}
		c.req = append(b, '}')
		c.resources = append(c.resources, resRef{"AWS::S3::Bucket", "arn:aws:s3:::" + bucket})
		c.extra = []byte(`{"SignatureVersion":"SigV4","CipherSuite":"TLS_AES_128_GCM_SHA256","bytesTransferredIn":0,"AuthenticationMethod":"AuthHeader","x-amz-id-2":"Fv3ZTc2kCAjJpvnn8xC4j9UhUpjKVtMTBThtmNiuBLWf5ZzUSi1uISs95ZN8oJZhdBShc4bKjg0=","bytesTransferredOut":0}`)
	}
}
