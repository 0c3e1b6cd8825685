//! natflow::destinations: well-known destinations by hostname and AWS service endpoints by
//! name, with exact advice texts.

use natflow::destinations::{
    aws_endpoint, classify, label, looks_like_region, normalize, AdviceContext, Catalogue, Class, DestinationsError,
    EndpointType,
};
use natflow::Prices;

/// (key, class, pattern, region) of the destination a host belongs to.
fn class_of(host: &str) -> Option<(String, Class, String, Option<String>)> {
    classify(host).map(|d| (d.key, d.class, d.pattern, d.region))
}

#[test]
fn container_registries_by_hostname() {
    let cases: &[(&str, &str, &str, Option<&str>)] = &[
        ("registry-1.docker.io", "docker-hub", "docker.io", None),
        ("auth.docker.io", "docker-hub", "docker.io", None),
        (
            "production.cloudflare.docker.com",
            "docker-hub",
            "production.cloudflare.docker.com",
            None,
        ),
        ("ghcr.io", "github-container-registry", "ghcr.io", None),
        (
            "pkg-containers.githubusercontent.com",
            "github-container-registry",
            "pkg-containers.githubusercontent.com",
            None,
        ),
        ("quay.io", "quay", "quay.io", None),
        ("cdn01.quay.io", "quay", "quay.io", None),
        ("public.ecr.aws", "ecr-public", "public.ecr.aws", None),
        ("registry.k8s.io", "kubernetes-registry", "registry.k8s.io", None),
        (
            "123456789012.dkr.ecr.us-east-1.amazonaws.com",
            "ecr",
            "ecr.{region}.amazonaws.com",
            Some("us-east-1"),
        ),
        (
            "api.ecr.eu-west-1.amazonaws.com",
            "ecr",
            "ecr.{region}.amazonaws.com",
            Some("eu-west-1"),
        ),
        (
            "prod-eu-west-1-starport-layer-bucket.s3.eu-west-1.amazonaws.com",
            "ecr",
            "prod-{region}-starport-layer-bucket.s3.{region}.amazonaws.com",
            Some("eu-west-1"),
        ),
    ];
    for (host, key, pattern, region) in cases {
        assert_eq!(
            class_of(host),
            Some((
                key.to_string(),
                Class::ContainerRegistry,
                pattern.to_string(),
                region.map(str::to_string)
            )),
            "{host}"
        );
    }
    // The layer bucket of one Region under another Region's S3 name is not ECR's: every
    // {region} of a pattern stands for the same Region.
    assert_eq!(
        class_of("prod-us-east-1-starport-layer-bucket.s3.eu-west-1.amazonaws.com"),
        None
    );
    // Names are displayed as compared.
    let d = classify("Registry-1.Docker.IO.").unwrap();
    assert_eq!(
        (d.host.as_str(), d.name.as_str()),
        ("registry-1.docker.io", "Docker Hub")
    );
}

#[test]
fn package_registries_by_hostname() {
    let cases: &[(&str, &str)] = &[
        ("pypi.org", "pypi"),
        ("files.pythonhosted.org", "pypi"),
        ("registry.npmjs.org", "npm"),
        ("crates.io", "crates-io"),
        ("static.crates.io", "crates-io"),
        ("index.crates.io", "crates-io"),
        ("proxy.golang.org", "go-proxy"),
        ("sum.golang.org", "go-proxy"),
        ("repo1.maven.org", "maven-central"),
        ("repo.maven.apache.org", "maven-central"),
    ];
    for (host, key) in cases {
        let d = classify(host).unwrap_or_else(|| panic!("{host} not classified"));
        assert_eq!((d.key.as_str(), d.class), (*key, Class::PackageRegistry), "{host}");
    }
}

/// Whole labels from the right, never part of a label; a trailing dot and ASCII case do not
/// matter; IDN and punycode labels are left as they are (so a look-alike matches nothing).
#[test]
fn tricky_names_match_on_whole_labels_only() {
    for host in [
        "evilpypi.org",
        "pypi.org.attacker.net",
        "notdocker.io",
        "docker.io.evil.com",
        "ghcr.io.example.com",
        "xn--pypi-5qa.org",
        "руpi.org",
        "crates.io..",
        "a..crates.io",
        "",
        ".",
        "example.com",
    ] {
        assert_eq!(class_of(host), None, "{host:?}");
    }
    assert_eq!(class_of("PYPI.ORG").map(|c| c.0), Some("pypi".to_string()));
    assert_eq!(class_of("pypi.org.").map(|c| c.0), Some("pypi".to_string()));
    assert_eq!(
        class_of(" files.pythonhosted.org. ").map(|c| c.0),
        Some("pypi".to_string())
    );
    assert_eq!(normalize("Bücher.Example."), Some("bücher.example".to_string()));
    assert_eq!(
        normalize("xn--bcher-kva.EXAMPLE"),
        Some("xn--bcher-kva.example".to_string())
    );
}

#[test]
fn docker_hub_advice_is_a_pull_through_cache_and_the_ecr_endpoints() {
    let a = classify("registry-1.docker.io")
        .unwrap()
        .advice("eu-west-1", Some("vpc-0example"));
    assert_eq!(
        a.text,
        "Pull Docker Hub images through an Amazon ECR pull through cache in eu-west-1: the first pull of an image still \
         comes from Docker Hub, later pulls come from ECR, whose layers come from S3 through the free gateway endpoint. \
         Docker Hub requires a Secrets Manager secret whose name starts with ecr-pullthroughcache/. Then pull \
         <account-id>.dkr.ecr.eu-west-1.amazonaws.com/docker-hub/<repository>:<tag> (official images: \
         docker-hub/library/<name>)."
    );
    assert_eq!(
        a.commands,
        [
            "aws secretsmanager create-secret --region eu-west-1 --name ecr-pullthroughcache/docker-hub --secret-string '{\"username\":\"<Docker Hub user>\",\"accessToken\":\"<Docker Hub access token>\"}'",
            "aws ecr create-pull-through-cache-rule --region eu-west-1 --ecr-repository-prefix docker-hub --upstream-registry-url registry-1.docker.io --credential-arn <ARN of the secret above>",
            "aws ec2 create-vpc-endpoint --region eu-west-1 --vpc-id vpc-0example --service-name com.amazonaws.eu-west-1.s3 --route-table-ids <route table IDs>",
            "aws ec2 describe-vpc-endpoint-services --region eu-west-1 --service-names com.amazonaws.eu-west-1.ecr.api --query 'ServiceDetails[].AvailabilityZones' --output text",
            "aws ec2 create-vpc-endpoint --region eu-west-1 --vpc-id vpc-0example --vpc-endpoint-type Interface --service-name com.amazonaws.eu-west-1.ecr.api --subnet-ids <one subnet ID per Availability Zone> --security-group-ids <security group allowing TCP 443 from the VPC> --private-dns-enabled",
            "aws ec2 describe-vpc-endpoint-services --region eu-west-1 --service-names com.amazonaws.eu-west-1.ecr.dkr --query 'ServiceDetails[].AvailabilityZones' --output text",
            "aws ec2 create-vpc-endpoint --region eu-west-1 --vpc-id vpc-0example --vpc-endpoint-type Interface --service-name com.amazonaws.eu-west-1.ecr.dkr --subnet-ids <one subnet ID per Availability Zone> --security-group-ids <security group allowing TCP 443 from the VPC> --private-dns-enabled",
        ]
    );
}

#[test]
fn quay_and_pypi_advice_and_no_command_invented_for_go() {
    let q = classify("cdn02.quay.io").unwrap().advice("us-east-2", None);
    assert_eq!(
        q.commands[0],
        "aws ecr create-pull-through-cache-rule --region us-east-2 --ecr-repository-prefix quay --upstream-registry-url quay.io"
    );
    // No VPC ID known: the placeholder the recorder's advice uses.
    assert_eq!(
        q.commands[1],
        "aws ec2 create-vpc-endpoint --region us-east-2 --vpc-id <vpc-id> --service-name com.amazonaws.us-east-2.s3 --route-table-ids <route table IDs>"
    );
    let p = classify("files.pythonhosted.org")
        .unwrap()
        .advice("us-east-1", Some("vpc-1"));
    assert_eq!(
        &p.commands[..3],
        [
            "aws codeartifact create-domain --region us-east-1 --domain <domain>",
            "aws codeartifact create-repository --region us-east-1 --domain <domain> --repository pypi-store",
            "aws codeartifact associate-external-connection --region us-east-1 --domain <domain> --repository pypi-store --external-connection public:pypi",
        ]
    );
    // PyPI through CodeArtifact needs no S3 endpoint (CodeArtifact user guide): the two
    // interface endpoints only.
    let names: Vec<_> = classify("pypi.org")
        .unwrap()
        .endpoints
        .into_iter()
        .map(|e| (e.service, e.kind))
        .collect();
    assert_eq!(
        names,
        [
            ("codeartifact.api".to_string(), EndpointType::Interface),
            ("codeartifact.repositories".to_string(), EndpointType::Interface)
        ]
    );
    let g = classify("proxy.golang.org").unwrap().advice("us-east-1", None);
    assert!(g.commands.is_empty(), "{:?}", g.commands);
    assert!(
        g.text.starts_with("AWS CodeArtifact has no Go module format"),
        "{}",
        g.text
    );
}

/// In a China Region the endpoint's service name prefix varies by service: the advice looks
/// it up instead of guessing it.
#[test]
fn china_regions_look_the_endpoint_service_name_up() {
    let a = classify("quay.io").unwrap().advice("cn-north-1", Some("vpc-1"));
    assert_eq!(
        &a.commands[1..],
        [
            "aws ec2 describe-vpc-endpoint-services --region cn-north-1 --query \"ServiceNames[?ends_with(@, '.s3')]\" --output text",
            "aws ec2 describe-vpc-endpoint-services --region cn-north-1 --query \"ServiceNames[?ends_with(@, '.ecr.api')]\" --output text",
            "aws ec2 describe-vpc-endpoint-services --region cn-north-1 --query \"ServiceNames[?ends_with(@, '.ecr.dkr')]\" --output text",
        ]
    );
    let e = aws_endpoint("sqs.cn-north-1.amazonaws.com.cn").unwrap();
    assert_eq!(
        (e.key.as_str(), e.region.as_deref(), e.china),
        ("sqs", Some("cn-north-1"), true)
    );
    assert_eq!(e.service_name(), None);
}

/// (key, name, region, VPC endpoint service, type, full service name) of an AWS endpoint.
type Parsed = (
    String,
    String,
    Option<String>,
    Option<String>,
    Option<EndpointType>,
    Option<String>,
);

fn parsed(host: &str) -> Option<Parsed> {
    aws_endpoint(host).map(|e| {
        let full = e.service_name();
        (
            e.key,
            e.name,
            e.region,
            e.endpoint.as_ref().map(|v| v.service.clone()),
            e.endpoint.map(|v| v.kind),
            full,
        )
    })
}

/// (host, key, name, region, VPC endpoint service, type, full service name).
type Case = (
    &'static str,
    &'static str,
    &'static str,
    Option<&'static str>,
    &'static str,
    EndpointType,
    Option<&'static str>,
);

#[test]
fn aws_service_endpoints_by_hostname() {
    use EndpointType::{Gateway, Interface};
    let cases: &[Case] = &[
        (
            "sqs.eu-west-1.amazonaws.com",
            "sqs",
            "SQS",
            Some("eu-west-1"),
            "sqs",
            Interface,
            Some("com.amazonaws.eu-west-1.sqs"),
        ),
        (
            "s3.eu-west-1.amazonaws.com",
            "s3",
            "S3",
            Some("eu-west-1"),
            "s3",
            Gateway,
            Some("com.amazonaws.eu-west-1.s3"),
        ),
        (
            "bucket.s3.dualstack.us-east-1.amazonaws.com",
            "s3",
            "S3",
            Some("us-east-1"),
            "s3",
            Gateway,
            Some("com.amazonaws.us-east-1.s3"),
        ),
        (
            "my.dotted.bucket.s3.us-west-2.amazonaws.com",
            "s3",
            "S3",
            Some("us-west-2"),
            "s3",
            Gateway,
            Some("com.amazonaws.us-west-2.s3"),
        ),
        (
            "ap-111122223333.s3-accesspoint.eu-central-1.amazonaws.com",
            "s3-accesspoint",
            "S3 (access point)",
            Some("eu-central-1"),
            "s3",
            Gateway,
            Some("com.amazonaws.eu-central-1.s3"),
        ),
        (
            "bucket.s3-us-west-2.amazonaws.com",
            "s3",
            "S3",
            Some("us-west-2"),
            "s3",
            Gateway,
            Some("com.amazonaws.us-west-2.s3"),
        ),
        (
            "s3-external-1.amazonaws.com",
            "s3",
            "S3",
            Some("us-east-1"),
            "s3",
            Gateway,
            Some("com.amazonaws.us-east-1.s3"),
        ),
        ("bucket.s3.amazonaws.com", "s3", "S3", None, "s3", Gateway, None),
        (
            "dynamodb.us-east-1.amazonaws.com",
            "dynamodb",
            "DynamoDB",
            Some("us-east-1"),
            "dynamodb",
            Gateway,
            Some("com.amazonaws.us-east-1.dynamodb"),
        ),
        (
            "logs.us-east-1.amazonaws.com",
            "logs",
            "CloudWatch Logs",
            Some("us-east-1"),
            "logs",
            Interface,
            Some("com.amazonaws.us-east-1.logs"),
        ),
        (
            "123456789012.dkr.ecr.us-east-1.amazonaws.com",
            "dkr.ecr",
            "ECR registry",
            Some("us-east-1"),
            "ecr.dkr",
            Interface,
            Some("com.amazonaws.us-east-1.ecr.dkr"),
        ),
        (
            "api.ecr.us-east-1.amazonaws.com",
            "api.ecr",
            "ECR API",
            Some("us-east-1"),
            "ecr.api",
            Interface,
            Some("com.amazonaws.us-east-1.ecr.api"),
        ),
        ("sts.amazonaws.com", "sts", "STS", None, "sts", Interface, None),
        (
            "sts.eu-north-1.amazonaws.com",
            "sts",
            "STS",
            Some("eu-north-1"),
            "sts",
            Interface,
            Some("com.amazonaws.eu-north-1.sts"),
        ),
        (
            "kinesis.us-west-2.amazonaws.com",
            "kinesis",
            "Kinesis Data Streams",
            Some("us-west-2"),
            "kinesis-streams",
            Interface,
            Some("com.amazonaws.us-west-2.kinesis-streams"),
        ),
        (
            "firehose.us-west-2.amazonaws.com",
            "firehose",
            "Data Firehose",
            Some("us-west-2"),
            "kinesis-firehose",
            Interface,
            Some("com.amazonaws.us-west-2.kinesis-firehose"),
        ),
        (
            "runtime.sagemaker.us-east-1.amazonaws.com",
            "runtime.sagemaker",
            "SageMaker runtime",
            Some("us-east-1"),
            "sagemaker.runtime",
            Interface,
            Some("com.amazonaws.us-east-1.sagemaker.runtime"),
        ),
        (
            "my-domain-111122223333.d.codeartifact.us-west-2.amazonaws.com",
            "d.codeartifact",
            "CodeArtifact repositories",
            Some("us-west-2"),
            "codeartifact.repositories",
            Interface,
            Some("com.amazonaws.us-west-2.codeartifact.repositories"),
        ),
        // A Region opened after the table of Region codes: read by its shape.
        (
            "SQS.xx-newplace-9.AmazonAWS.com.",
            "sqs",
            "SQS",
            Some("xx-newplace-9"),
            "sqs",
            Interface,
            Some("com.amazonaws.xx-newplace-9.sqs"),
        ),
        // A bucket named like a service is still a bucket.
        (
            "sqs.s3.eu-west-1.amazonaws.com",
            "s3",
            "S3",
            Some("eu-west-1"),
            "s3",
            Gateway,
            Some("com.amazonaws.eu-west-1.s3"),
        ),
    ];
    for (host, key, name, region, svc, kind, full) in cases {
        assert_eq!(
            parsed(host),
            Some((
                key.to_string(),
                name.to_string(),
                region.map(str::to_string),
                Some(svc.to_string()),
                Some(*kind),
                full.map(str::to_string)
            )),
            "{host}"
        );
    }
}

#[test]
fn names_under_amazonaws_that_are_not_a_known_service_api_are_none() {
    for host in [
        "ec2-203-0-113-9.compute-1.amazonaws.com",
        "ec2-203-0-113-9.us-west-2.compute.amazonaws.com",
        "my-lb-1234567890.us-east-1.elb.amazonaws.com",
        "my-nlb-0123456789abcdef.elb.us-east-1.amazonaws.com",
        "vpce-0a1b2c3d-e4f5g6h7.sqs.us-east-1.vpce.amazonaws.com",
        "unknownservice.us-east-1.amazonaws.com",
        "bucket.s3-website-us-east-1.amazonaws.com",
        "foo.sts.amazonaws.com",
        "amazonaws.com",
        "us-east-1.amazonaws.com",
        "sqs.eu-west-1.amazonaws.com.attacker.net",
        "sqs.eu-west-1.evilamazonaws.com",
        "sqs.eu-west-1.amazonaws.co",
        "sqs.eu-west-1.amazonaws.com..",
    ] {
        assert_eq!(parsed(host), None, "{host}");
    }
    // Known, but no VPC endpoint carries it: named, with the reason, and no advice.
    let e = aws_endpoint("a1b2c3d4e5.execute-api.eu-west-1.amazonaws.com").unwrap();
    assert_eq!((e.key.as_str(), e.endpoint.is_none()), ("execute-api", true));
    assert!(e
        .note
        .as_deref()
        .unwrap()
        .starts_with("an execute-api interface endpoint reaches private APIs only"));
    let prices = Prices::for_region("eu-west-1", None).unwrap();
    let ctx = AdviceContext {
        region: "eu-west-1",
        vpc_id: None,
        prices: &prices,
        azs: 2,
    };
    assert_eq!(e.advice(&ctx, 1 << 30), None);
    assert_eq!(e.cost(1 << 30, &prices, 2), None);
}

const GIB: u64 = 1 << 30;

fn ctx<'a>(region: &'a str, prices: &'a Prices, azs: u32) -> AdviceContext<'a> {
    AdviceContext {
        region,
        vpc_id: Some("vpc-0example"),
        prices,
        azs,
    }
}

#[test]
fn interface_endpoint_advice_weighs_its_hourly_cost_against_the_nat_processing() {
    // eu-west-1 has no entry of its own: us-east-1's prices ($0.045/GB NAT, $0.01/GB and
    // $0.01/hour per AZ for an interface endpoint).
    let prices = Prices::for_region("eu-west-1", None).unwrap();
    let a = aws_endpoint("sqs.eu-west-1.amazonaws.com")
        .unwrap()
        .advice(&ctx("eu-west-1", &prices, 2), 10 * GIB)
        .unwrap();
    assert_eq!(
        a.text,
        "SQS (sqs.eu-west-1.amazonaws.com): an interface VPC endpoint (com.amazonaws.eu-west-1.sqs) with private DNS \
         would carry this traffic instead of the NAT. On these 10.7 GB: NAT processing $0.45, through the endpoint \
         $0.10, saved $0.35. The endpoint costs $0.01 an hour in each Availability Zone it is in (2 zones: $14.60 a \
         month), so it pays for itself above 417 GB a month through it. Private DNS needs the VPC's enableDnsSupport \
         and enableDnsHostnames attributes on."
    );
    assert_eq!(
        a.commands,
        [
            "aws ec2 describe-vpc-endpoint-services --region eu-west-1 --service-names com.amazonaws.eu-west-1.sqs --query 'ServiceDetails[].AvailabilityZones' --output text",
            "aws ec2 create-vpc-endpoint --region eu-west-1 --vpc-id vpc-0example --vpc-endpoint-type Interface --service-name com.amazonaws.eu-west-1.sqs --subnet-ids <one subnet ID per Availability Zone> --security-group-ids <security group allowing TCP 443 from the VPC> --private-dns-enabled",
        ]
    );
    // One zone: its own wording and half the hours.
    let one = aws_endpoint("logs.us-east-1.amazonaws.com")
        .unwrap()
        .advice(&ctx("us-east-1", &prices, 1), 10 * GIB)
        .unwrap();
    assert!(
        one.text
            .contains("(1 zone: $7.30 a month), so it pays for itself above 209 GB a month"),
        "{}",
        one.text
    );
}

#[test]
fn endpoint_costs_are_computed_from_the_price_table() {
    let prices = Prices::for_region("us-east-1", None).unwrap();
    let c = aws_endpoint("logs.us-east-1.amazonaws.com")
        .unwrap()
        .cost(10 * GIB, &prices, 3)
        .unwrap();
    assert_eq!(c.kind, EndpointType::Interface);
    assert!((c.nat_usd - 0.45).abs() < 1e-9, "{c:?}");
    assert!((c.endpoint_processing_usd - 0.10).abs() < 1e-9, "{c:?}");
    assert!((c.saving_usd - 0.35).abs() < 1e-9, "{c:?}");
    assert!((c.hourly_usd - 0.03).abs() < 1e-9, "{c:?}");
    assert!((c.monthly_usd - 21.9).abs() < 1e-9, "{c:?}");
    assert!(
        (c.break_even_gb_per_month.unwrap() - 21.9 / 0.035).abs() < 1e-6,
        "{c:?}"
    );
    let g = aws_endpoint("dynamodb.us-east-1.amazonaws.com")
        .unwrap()
        .cost(10 * GIB, &prices, 3)
        .unwrap();
    assert_eq!(
        (g.kind, g.saving_usd, g.hourly_usd, g.break_even_gb_per_month),
        (EndpointType::Gateway, g.nat_usd, 0.0, None)
    );
    // Prices where the endpoint's processing costs more than the NAT's: never pays, and says so.
    let odd = Prices::for_region(
        "us-east-1",
        Some(r#"{"us-east-1": {"nat_per_gb": 0.01, "interface_endpoint_per_gb": 0.02}}"#),
    )
    .unwrap();
    let e = aws_endpoint("sqs.us-east-1.amazonaws.com").unwrap();
    assert_eq!(e.cost(GIB, &odd, 1).unwrap().break_even_gb_per_month, None);
    assert_eq!(e.cost(GIB, &odd, 1).unwrap().saving_usd, 0.0);
    assert!(e
        .advice(&ctx("us-east-1", &odd, 1), GIB)
        .unwrap()
        .text
        .contains("so at these prices it never costs less than the NAT processing it saves."));
}

#[test]
fn gateway_global_and_cross_region_advice() {
    let prices = Prices::for_region("eu-west-1", None).unwrap();
    let s3 = aws_endpoint("bucket.s3.eu-west-1.amazonaws.com")
        .unwrap()
        .advice(&ctx("eu-west-1", &prices, 2), 10 * GIB)
        .unwrap();
    assert_eq!(
        s3.text,
        "S3 (bucket.s3.eu-west-1.amazonaws.com): a gateway VPC endpoint (com.amazonaws.eu-west-1.s3) is free and its \
         traffic pays no NAT processing: it would have saved $0.45 on these 10.7 GB. Add it to the route tables of the \
         subnets that send this traffic."
    );
    assert_eq!(
        s3.commands,
        ["aws ec2 create-vpc-endpoint --region eu-west-1 --vpc-id vpc-0example --service-name com.amazonaws.eu-west-1.s3 --route-table-ids <route table IDs>"]
    );
    // S3's global name: for a bucket in the VPC's Region, said as such.
    let global = aws_endpoint("bucket.s3.amazonaws.com")
        .unwrap()
        .advice(&ctx("eu-west-1", &prices, 2), 10 * GIB)
        .unwrap();
    assert!(
        global.text.starts_with(
            "S3 (bucket.s3.amazonaws.com) is S3's global name, served by the bucket's own Region; for a bucket in \
             eu-west-1: a gateway VPC endpoint (com.amazonaws.eu-west-1.s3) is free"
        ),
        "{}",
        global.text
    );
    // STS's global endpoint: first the regional endpoint, then its interface endpoint.
    let sts = aws_endpoint("sts.amazonaws.com")
        .unwrap()
        .advice(&ctx("eu-west-1", &prices, 2), 10 * GIB)
        .unwrap();
    assert!(
        sts.text.starts_with(
            "STS (sts.amazonaws.com) is STS's global endpoint, which no VPC endpoint serves: have the clients call the \
             regional endpoint sts.eu-west-1.amazonaws.com (AWS_STS_REGIONAL_ENDPOINTS=regional, or \
             sts_regional_endpoints = regional in the AWS config file). Then an interface VPC endpoint \
             (com.amazonaws.eu-west-1.sts) with private DNS would carry this traffic"
        ),
        "{}",
        sts.text
    );
    assert!(sts.commands[1].contains("--service-name com.amazonaws.eu-west-1.sts "));
    // Another Region's endpoint: a VPC endpoint serves its own Region only, no advice.
    assert_eq!(
        aws_endpoint("sqs.us-east-1.amazonaws.com")
            .unwrap()
            .advice(&ctx("eu-west-1", &prices, 2), 10 * GIB),
        None
    );
    // The ECR note is said with the advice.
    let ecr = aws_endpoint("ecr.eu-west-1.amazonaws.com")
        .unwrap()
        .advice(&ctx("eu-west-1", &prices, 2), GIB)
        .unwrap();
    assert!(
        ecr.text.ends_with(
            "Note: the ecr.api endpoint answers on api.ecr.<region>.amazonaws.com: clients calling \
             ecr.<region>.amazonaws.com must use api.ecr (the default of the AWS CLI and SDKs; ECR endpoints and quotas \
             page)."
        ),
        "{}",
        ecr.text
    );
}

#[test]
fn an_override_file_adds_changes_and_removes_entries() {
    let o = r#"{
      "_comment": "our mirror and GitLab",
      "destinations": {
        "gitlab-registry": {
          "name": "GitLab Container Registry", "class": "container-registry", "patterns": ["registry.gitlab.com"],
          "advice": "Pull through an ECR pull through cache in {region}.",
          "commands": ["aws ecr create-pull-through-cache-rule --region {region} --ecr-repository-prefix gitlab --upstream-registry-url registry.gitlab.com --credential-arn <ARN>"],
          "endpoints": ["s3", "ecr.api", "ecr.dkr"],
          "sources": ["https://docs.aws.amazon.com/AmazonECR/latest/userguide/pull-through-cache.html"]
        },
        "docker-hub": { "advice": "Use our mirror in {region} (VPC {vpc_id})." },
        "go-proxy": null
      },
      "aws_services": {
        "textract": { "name": "Textract", "endpoint": "textract", "type": "Interface" }
      }
    }"#;
    let c = Catalogue::load(Some(o)).unwrap();
    // Added.
    let g = c.classify("registry.gitlab.com").unwrap();
    assert_eq!((g.key.as_str(), g.class), ("gitlab-registry", Class::ContainerRegistry));
    assert_eq!(g.advice("us-east-1", None).commands.len(), 1 + 1 + 2 + 2);
    // Changed: the field given, the others (patterns, commands) the built-in ones.
    let d = c.classify("auth.docker.io").unwrap();
    let a = d.advice("eu-west-1", Some("vpc-9"));
    assert_eq!(a.text, "Use our mirror in eu-west-1 (VPC vpc-9).");
    assert!(a.commands[1]
        .starts_with("aws ecr create-pull-through-cache-rule --region eu-west-1 --ecr-repository-prefix docker-hub"));
    // Removed.
    assert_eq!(c.classify("proxy.golang.org"), None);
    // Added service.
    let t = c.aws_endpoint("textract.us-east-1.amazonaws.com").unwrap();
    assert_eq!(t.service_name().as_deref(), Some("com.amazonaws.us-east-1.textract"));
    // The built-in catalogue is untouched.
    assert_eq!(classify("registry.gitlab.com"), None);
    assert_eq!(aws_endpoint("textract.us-east-1.amazonaws.com"), None);
    assert!(classify("proxy.golang.org").is_some());
}

#[test]
fn bad_override_files_name_the_entry_and_the_mistake() {
    let err = |o: &str| Catalogue::load(Some(o)).unwrap_err().to_string();
    assert_eq!(
        err(r#"{"destinations": {"docker-hub": {"pattern": ["x.io"]}}}"#),
        "destinations file, destinations entry \"docker-hub\": unknown field `pattern`, expected one of `name`, \
         `class`, `patterns`, `advice`, `commands`, `endpoints`, `sources`"
    );
    assert_eq!(
        err(r#"{"destinations": {"quay": {"advice": "in {regoin}"}}}"#),
        "destinations file, destinations entry \"quay\": unknown placeholder {regoin}; the placeholders are {region} \
         and {vpc_id}"
    );
    assert_eq!(
        err(r#"{"destinations": {"quay": {"endpoints": ["ecr.dockr"]}}}"#),
        "destinations file, destinations entry \"quay\": endpoint \"ecr.dockr\" is not an endpoint of aws_services"
    );
    assert_eq!(
        err(r#"{"destinations": {"quay": {"patterns": ["*.quay.io"]}}}"#),
        "destinations file, destinations entry \"quay\": pattern \"*.quay.io\": only {region} may stand for something"
    );
    assert_eq!(
        err(
            r#"{"destinations": {"x": {"name": "X", "class": "container-registry", "patterns": [], "advice": "a", "sources": []}}}"#
        ),
        "destinations file, destinations entry \"x\": no patterns"
    );
    assert_eq!(
        err(r#"{"aws_services": {"sqs": {"type": null, "endpoint": "sqs"}}}"#),
        "destinations file, aws_services entry \"sqs\": an endpoint needs its \"type\": Gateway or Interface"
    );
    assert_eq!(
        err(r#"{"destination": {}}"#),
        "destinations file: unknown section \"destination\"; the sections are destinations, aws_services"
    );
    assert!(matches!(
        Catalogue::load(Some("{not json")),
        Err(DestinationsError::File(_))
    ));
}

#[test]
fn the_built_in_catalogue_is_valid_and_sourced() {
    let c = Catalogue::load(None).unwrap();
    for host in [
        "registry-1.docker.io",
        "ghcr.io",
        "quay.io",
        "pypi.org",
        "registry.npmjs.org",
        "crates.io",
    ] {
        let d = c.classify(host).unwrap();
        assert!(!d.sources.is_empty(), "{host}");
        assert!(
            d.sources.iter().all(|s| s.starts_with("https://")),
            "{host}: {:?}",
            d.sources
        );
    }
}

#[test]
fn region_codes_are_recognised_by_their_shape() {
    for r in [
        "us-east-1",
        "eu-west-3",
        "us-gov-west-1",
        "ap-southeast-7",
        "cn-northwest-1",
    ] {
        assert!(looks_like_region(r), "{r}");
    }
    for r in [
        "s3-external-1",
        "compute-1",
        "dualstack",
        "us-east",
        "useast-1",
        "us-east-1a",
        "US-EAST-1",
        "u-east-1",
    ] {
        assert!(!looks_like_region(r), "{r}");
    }
}

#[test]
fn labels_name_what_a_host_is_or_nothing() {
    let cases: &[(&str, Option<&str>)] = &[
        ("registry-1.docker.io", Some("Docker Hub")),
        ("123456789012.dkr.ecr.us-east-1.amazonaws.com", Some("Amazon ECR")),
        ("sqs.eu-west-1.amazonaws.com", Some("SQS, eu-west-1")),
        ("sts.amazonaws.com", Some("STS, global endpoint")),
        ("bucket.s3.amazonaws.com", Some("S3, global endpoint")),
        ("evilpypi.org", None),
        ("ec2-203-0-113-9.compute-1.amazonaws.com", None),
    ];
    for (host, want) in cases {
        assert_eq!(label(host).as_deref(), *want, "{host}");
    }
    // The JSON form carries what was matched, not the unfilled templates.
    let j = serde_json::to_value(classify("ghcr.io").unwrap()).unwrap();
    assert_eq!(j["key"], "github-container-registry");
    assert_eq!(j["class"], "container-registry");
    assert!(j.get("advice").is_none() && j.get("commands").is_none(), "{j}");
}
