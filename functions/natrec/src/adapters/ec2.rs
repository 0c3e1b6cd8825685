//! EC2 adapter: NAT Gateways and flow logs.

use async_trait::async_trait;
use aws_sdk_ec2::types::{
    AvailabilityMode, FlowLogsResourceType, LogDestinationType, ResourceType, Tag, TagSpecification, TrafficType,
};
use aws_sdk_ec2::Client;

use crate::error::{service_code, RecorderError, Result};
use crate::nat::{FlowLogTarget, NatGateway, NatGatewayId};
use crate::ports::{CreatedFlowLogs, FlowLogRequest, FlowLogs, NatDirectory, TaggedFlowLog};

/// EC2 API reference, DescribeFlowLogs and DescribeNetworkInterfaces: `MaxResults` 5 to 1,000,
/// the rest by `NextToken`. DescribeNetworkInterfaces: "We strongly recommend using only
/// paginated requests. Unpaginated requests are susceptible to throttling and timeouts."
pub const PAGE_SIZE: i32 = 1000;
/// EC2 API guide, "List and filter your resources" (filtering): at most 200 filter values in one
/// call, all filters together; lookups send one filter of at most this many values.
pub const FILTER_VALUES: usize = 200;
/// DeleteFlowLogs: "Maximum of 1000 flow log IDs."
pub const DELETE_BATCH: usize = 1000;

#[derive(Clone)]
pub struct Ec2 {
    client: Client,
}

impl Ec2 {
    pub fn new(client: Client) -> Self {
        Self { client }
    }
}

#[async_trait]
impl NatDirectory for Ec2 {
    async fn describe(&self, id: &NatGatewayId) -> Result<Option<NatGateway>> {
        // One NAT by its ID: at most one item, so no page to follow (DescribeNatGateways).
        let out = match self
            .client
            .describe_nat_gateways()
            .nat_gateway_ids(id.as_str())
            .send()
            .await
        {
            Ok(out) => out,
            Err(e) if service_code(&e) == Some("NatGatewayNotFound") => return Ok(None),
            Err(e) => return Err(RecorderError::from_sdk("EC2", "DescribeNatGateways", &e)),
        };
        let Some(nat) = out
            .nat_gateways()
            .iter()
            .find(|n| n.nat_gateway_id() == Some(id.as_str()))
        else {
            return Ok(None);
        };
        let mut interfaces: Vec<String> = Vec::new();
        for eni in nat
            .nat_gateway_addresses()
            .iter()
            .filter_map(|a| a.network_interface_id())
        {
            if !interfaces.iter().any(|i| i == eni) {
                interfaces.push(eni.to_string());
            }
        }
        // A fixed order, so that a retried CreateFlowLogs sends the same ResourceIds with its
        // ClientToken (EC2 "Ensuring idempotency": different parameters, same token =
        // IdempotentParameterMismatch).
        interfaces.sort();
        Ok(Some(NatGateway {
            id: id.clone(),
            state: nat
                .state()
                .map(|s| s.as_str().to_string())
                .unwrap_or_else(|| "unknown".into()),
            vpc_id: nat.vpc_id().map(str::to_string),
            regional: nat.availability_mode() == Some(&AvailabilityMode::Regional),
            interfaces,
            // EC2 API reference, NatGateway: `tags` "The tags for the NAT gateway", returned by
            // DescribeNatGateways (docs.aws.amazon.com/AWSEC2/latest/APIReference/API_NatGateway.html);
            // the `Name` tag is the name the console shows.
            name: nat
                .tags()
                .iter()
                .find(|t| t.key() == Some("Name"))
                .and_then(|t| t.value())
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(str::to_string),
        }))
    }
}

#[async_trait]
impl FlowLogs for Ec2 {
    async fn create(&self, req: &FlowLogRequest) -> Result<CreatedFlowLogs> {
        let (resource_type, ids) = match &req.target {
            FlowLogTarget::Interfaces(enis) => (FlowLogsResourceType::NetworkInterface, enis.clone()),
            FlowLogTarget::RegionalNatGateway(nat) => (FlowLogsResourceType::RegionalNatGateway, vec![nat.to_string()]),
        };
        let tags = TagSpecification::builder()
            .resource_type(ResourceType::VpcFlowLog)
            .set_tags(Some(
                req.tags
                    .iter()
                    .map(|(k, v)| Tag::builder().key(k).value(v).build())
                    .collect(),
            ))
            .build();
        let out = self
            .client
            .create_flow_logs()
            .resource_type(resource_type)
            .set_resource_ids(Some(ids))
            .traffic_type(TrafficType::All)
            .log_destination_type(LogDestinationType::CloudWatchLogs)
            .log_group_name(&req.log_group)
            .deliver_logs_permission_arn(&req.delivery_role_arn)
            .log_format(&req.log_format)
            .max_aggregation_interval(req.max_aggregation_seconds)
            .client_token(&req.client_token)
            .tag_specifications(tags)
            .send()
            .await
            .map_err(|e| RecorderError::from_sdk("EC2", "CreateFlowLogs", &e))?;
        let refused: Vec<String> = out
            .unsuccessful()
            .iter()
            .map(|u| {
                let err = u.error();
                format!(
                    "{}: {} ({})",
                    u.resource_id().unwrap_or("?"),
                    err.and_then(|e| e.message()).unwrap_or("no message"),
                    err.and_then(|e| e.code()).unwrap_or("no code")
                )
            })
            .collect();
        Ok(CreatedFlowLogs {
            ids: out.flow_log_ids().to_vec(),
            refused,
        })
    }

    async fn find_tagged(&self, key: &str, value: &str) -> Result<Vec<TaggedFlowLog>> {
        let filter = aws_sdk_ec2::types::Filter::builder()
            .name(format!("tag:{key}"))
            .values(value)
            .build();
        self.describe_flow_logs(filter).await
    }

    async fn existing(&self, ids: &[String]) -> Result<Vec<TaggedFlowLog>> {
        // By filter, not FlowLogIds: a filter value that matches nothing is no error.
        let mut out = Vec::new();
        for chunk in ids.chunks(FILTER_VALUES) {
            let filter = aws_sdk_ec2::types::Filter::builder()
                .name("flow-log-id")
                .set_values(Some(chunk.to_vec()))
                .build();
            out.extend(self.describe_flow_logs(filter).await?);
        }
        Ok(out)
    }

    async fn delete(&self, ids: &[String]) -> Result<()> {
        for batch in ids.chunks(DELETE_BATCH) {
            self.delete_batch(batch).await?;
        }
        Ok(())
    }
}

impl Ec2 {
    /// Every flow log matching `filter`, every page (DescribeFlowLogs, `MaxResults` 1,000).
    async fn describe_flow_logs(&self, filter: aws_sdk_ec2::types::Filter) -> Result<Vec<TaggedFlowLog>> {
        let mut out = Vec::new();
        let mut pages = self
            .client
            .describe_flow_logs()
            .filter(filter)
            .max_results(PAGE_SIZE)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| RecorderError::from_sdk("EC2", "DescribeFlowLogs", &e))?;
            out.extend(page.flow_logs().iter().filter_map(|f| {
                Some(TaggedFlowLog {
                    id: f.flow_log_id()?.to_string(),
                    tags: f
                        .tags()
                        .iter()
                        .filter_map(|t| Some((t.key()?.to_string(), t.value().unwrap_or_default().to_string())))
                        .collect(),
                    deliver_logs_status: f.deliver_logs_status().map(str::to_string),
                    deliver_logs_error: f.deliver_logs_error_message().map(str::to_string),
                })
            }));
        }
        Ok(out)
    }

    async fn delete_batch(&self, ids: &[String]) -> Result<()> {
        let out = self
            .client
            .delete_flow_logs()
            .set_flow_log_ids(Some(ids.to_vec()))
            .send()
            .await;
        let out = match out {
            Ok(out) => out,
            // The whole call fails when an ID is unknown: delete one by one, tolerating NotFound.
            Err(e) if is_not_found(service_code(&e)) => {
                for id in ids {
                    match self.client.delete_flow_logs().flow_log_ids(id).send().await {
                        Ok(o) => check_unsuccessful(o.unsuccessful())?,
                        Err(e) if is_not_found(service_code(&e)) => {}
                        Err(e) => return Err(RecorderError::from_sdk("EC2", "DeleteFlowLogs", &e)),
                    }
                }
                return Ok(());
            }
            Err(e) => return Err(RecorderError::from_sdk("EC2", "DeleteFlowLogs", &e)),
        };
        check_unsuccessful(out.unsuccessful())
    }
}

fn is_not_found(code: Option<&str>) -> bool {
    matches!(code, Some("InvalidFlowLogId.NotFound"))
}

fn check_unsuccessful(items: &[aws_sdk_ec2::types::UnsuccessfulItem]) -> Result<()> {
    let failures: Vec<String> = items
        .iter()
        .filter(|u| !is_not_found(u.error().and_then(|e| e.code())))
        .map(|u| {
            format!(
                "{}: {}",
                u.resource_id().unwrap_or("?"),
                u.error().and_then(|e| e.message()).unwrap_or("no message")
            )
        })
        .collect();
    if failures.is_empty() {
        Ok(())
    } else {
        Err(RecorderError::Aws {
            service: "EC2",
            operation: "DeleteFlowLogs",
            message: failures.join("; "),
        })
    }
}

#[async_trait]
impl crate::ports::NetworkInventory for Ec2 {
    async fn interfaces(&self, vpc_id: &str) -> Result<Vec<natflow::Eni>> {
        let filter = aws_sdk_ec2::types::Filter::builder()
            .name("vpc-id")
            .values(vpc_id)
            .build();
        let mut out = Vec::new();
        let mut pages = self
            .client
            .describe_network_interfaces()
            .filters(filter)
            .max_results(PAGE_SIZE)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| RecorderError::from_sdk("EC2", "DescribeNetworkInterfaces", &e))?;
            out.extend(page.network_interfaces().iter().filter_map(to_eni));
        }
        Ok(out)
    }
}

/// The Name tag of EC2 tags.
fn name_tag(tags: &[aws_sdk_ec2::types::Tag]) -> Option<String> {
    tags.iter()
        .find(|t| t.key() == Some("Name"))
        .and_then(|t| t.value())
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_string)
}

fn network(
    cidr: Option<&str>,
    vpc_id: Option<&str>,
    owner: Option<&str>,
    via: Option<String>,
) -> Option<natflow::inventory::Network> {
    Some(natflow::inventory::Network {
        cidr: cidr?.parse().ok()?,
        vpc_id: vpc_id.map(str::to_string),
        name: None,
        owner: owner.map(str::to_string),
        via,
    })
}

fn to_eni(n: &aws_sdk_ec2::types::NetworkInterface) -> Option<natflow::Eni> {
    Some(natflow::Eni {
        interface_id: n.network_interface_id()?.to_string(),
        private_ips: n
            .private_ip_addresses()
            .iter()
            .filter_map(|p| p.private_ip_address().map(str::to_string))
            .chain(
                n.ipv6_addresses()
                    .iter()
                    .filter_map(|p| p.ipv6_address().map(str::to_string)),
            )
            .collect(),
        subnet_id: n.subnet_id().map(str::to_string),
        availability_zone: n.availability_zone().map(str::to_string),
        availability_zone_id: None,
        vpc_id: n.vpc_id().map(str::to_string),
        interface_type: n.interface_type().map(|t| t.as_str().to_string()),
        description: n.description().filter(|d| !d.is_empty()).map(str::to_string),
        requester_id: n.requester_id().map(str::to_string),
        instance_id: n.attachment().and_then(|a| a.instance_id()).map(str::to_string),
        tags: n
            .tag_set()
            .iter()
            .filter_map(|t| Some((t.key()?.to_string(), t.value().unwrap_or_default().to_string())))
            .collect(),
    })
}

#[async_trait]
impl crate::ports::AddressLookup for Ec2 {
    async fn interfaces_page(
        &self,
        addresses: &[String],
        next_token: Option<&str>,
    ) -> Result<crate::ports::InterfacePage> {
        // EC2 API reference, DescribeNetworkInterfaces: filter `addresses.private-ip-address`
        // ("The private IPv4 addresses associated with the network interface"), `MaxResults`
        // 5 to 1,000 with `NextToken`; the caller sends at most 200 values per filter (EC2 user
        // guide, "List and filter using the CLI and API") and follows the pages.
        let filter = aws_sdk_ec2::types::Filter::builder()
            .name("addresses.private-ip-address")
            .set_values(Some(addresses.to_vec()))
            .build();
        let out = self
            .client
            .describe_network_interfaces()
            .filters(filter)
            .max_results(crate::ports::LOOKUP_PAGE)
            .set_next_token(next_token.map(str::to_string))
            .send()
            .await
            .map_err(|e| RecorderError::from_sdk("EC2", "DescribeNetworkInterfaces", &e))?;
        Ok(crate::ports::InterfacePage {
            interfaces: out.network_interfaces().iter().filter_map(to_eni).collect(),
            next_token: out.next_token().filter(|t| !t.is_empty()).map(str::to_string),
        })
    }

    async fn networks(&self) -> Result<Vec<natflow::inventory::Network>> {
        let mut nets = Vec::new();
        // The account's VPCs (and VPCs shared with it): DescribeVpcs, every page.
        let mut names: std::collections::HashMap<String, String> = Default::default();
        let mut pages = self
            .client
            .describe_vpcs()
            .max_results(PAGE_SIZE)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| RecorderError::from_sdk("EC2", "DescribeVpcs", &e))?;
            for v in page.vpcs() {
                let name = name_tag(v.tags());
                if let (Some(id), Some(n)) = (v.vpc_id(), &name) {
                    names.insert(id.to_string(), n.clone());
                }
                let mut cidrs: Vec<&str> = v
                    .cidr_block_association_set()
                    .iter()
                    .filter_map(|c| c.cidr_block())
                    .collect();
                if cidrs.is_empty() {
                    cidrs.extend(v.cidr_block());
                }
                for c in cidrs {
                    nets.extend(network(Some(c), v.vpc_id(), v.owner_id(), None));
                }
            }
        }
        // Subnets shared with this account (VPC sharing): DescribeSubnets lists them with the
        // owner's account in `OwnerId` (VPC user guide, "Share your VPC with other accounts").
        let mut pages = self
            .client
            .describe_subnets()
            .max_results(PAGE_SIZE)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| RecorderError::from_sdk("EC2", "DescribeSubnets", &e))?;
            for s in page.subnets() {
                let via = s.subnet_id().map(|id| format!("subnet {id}"));
                nets.extend(network(s.cidr_block(), s.vpc_id(), s.owner_id(), via));
            }
        }
        // Peered VPCs: DescribeVpcPeeringConnections (active ones), both sides' CIDRs and owners.
        let active = aws_sdk_ec2::types::Filter::builder()
            .name("status-code")
            .values("active")
            .build();
        let mut pages = self
            .client
            .describe_vpc_peering_connections()
            .filters(active)
            .max_results(PAGE_SIZE)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| RecorderError::from_sdk("EC2", "DescribeVpcPeeringConnections", &e))?;
            for p in page.vpc_peering_connections() {
                let via = p.vpc_peering_connection_id().map(|id| format!("peering {id}"));
                for side in [p.requester_vpc_info(), p.accepter_vpc_info()].into_iter().flatten() {
                    let mut cidrs: Vec<&str> = side.cidr_block_set().iter().filter_map(|c| c.cidr_block()).collect();
                    if cidrs.is_empty() {
                        cidrs.extend(side.cidr_block());
                    }
                    for c in cidrs {
                        nets.extend(network(Some(c), side.vpc_id(), side.owner_id(), via.clone()));
                    }
                }
            }
        }
        // VPCs behind a transit gateway: the VPC attachments (owner account), and the CIDRs the
        // attachments' route tables route to them (SearchTransitGatewayRoutes: filters required,
        // `MaxResults` up to 1,000, no token: `AdditionalRoutesAvailable` says some were left out).
        let vpc_type = aws_sdk_ec2::types::Filter::builder()
            .name("resource-type")
            .values("vpc")
            .build();
        let mut tables: Vec<String> = Vec::new();
        let mut owners: std::collections::HashMap<String, (String, Option<String>)> = Default::default();
        let mut pages = self
            .client
            .describe_transit_gateway_attachments()
            .filters(vpc_type)
            .max_results(PAGE_SIZE)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| RecorderError::from_sdk("EC2", "DescribeTransitGatewayAttachments", &e))?;
            for a in page.transit_gateway_attachments() {
                if let Some(rt) = a.association().and_then(|x| x.transit_gateway_route_table_id()) {
                    if !tables.iter().any(|t| t == rt) {
                        tables.push(rt.to_string());
                    }
                }
                if let Some(vpc) = a.resource_id() {
                    owners.insert(
                        vpc.to_string(),
                        (
                            a.transit_gateway_id().unwrap_or("?").to_string(),
                            a.resource_owner_id().map(str::to_string),
                        ),
                    );
                }
            }
        }
        for rt in tables {
            let out = self
                .client
                .search_transit_gateway_routes()
                .transit_gateway_route_table_id(&rt)
                .filters(
                    aws_sdk_ec2::types::Filter::builder()
                        .name("attachment.resource-type")
                        .values("vpc")
                        .build(),
                )
                .filters(
                    aws_sdk_ec2::types::Filter::builder()
                        .name("state")
                        .values("active")
                        .build(),
                )
                // No MaxResults: its default is 1,000, the most there is (moto fails on the
                // parameter: README "Emulator gaps").
                .send()
                .await;
            // A transit gateway shared from another account (AWS RAM): its route tables are the
            // owner's, and this account may not search them (Transit Gateways guide, "Share a
            // transit gateway": participants cannot view or modify route tables). One table
            // refused costs its routes only: the VPCs, peerings and shared subnets still name.
            let out = match out {
                Ok(out) => out,
                Err(e) => {
                    let e = RecorderError::from_sdk("EC2", "SearchTransitGatewayRoutes", &e);
                    tracing::warn!(route_table = %rt, error = %e, "transit gateway routes not readable; its VPCs stay unnamed");
                    continue;
                }
            };
            for r in out.routes() {
                for a in r.transit_gateway_attachments() {
                    let vpc = a.resource_id();
                    let (tgw, owner) = vpc.and_then(|v| owners.get(v)).cloned().unwrap_or(("?".into(), None));
                    nets.extend(network(
                        r.destination_cidr_block(),
                        vpc,
                        owner.as_deref(),
                        Some(format!("transit gateway {tgw}")),
                    ));
                }
            }
        }
        for n in &mut nets {
            if let Some(v) = &n.vpc_id {
                n.name = names.get(v).cloned();
            }
        }
        Ok(nets)
    }
}
