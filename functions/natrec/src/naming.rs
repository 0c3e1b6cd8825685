//! Every source named (issue 12): the report merges the inventory snapshots taken at the start
//! and at the end of the recording, then looks up by address, across the account's region, the
//! sources they still do not name, and names what no interface lookup finds by the network it
//! is in (another VPC of the account, a peered VPC, a VPC behind a transit gateway, a subnet
//! shared with the account). What stays unknown is said so (`natflow::Inventory::name`).

use std::collections::HashMap;
use std::net::IpAddr;

use natflow::analyze::is_private;
use natflow::Inventory;
use tracing::warn;

use crate::error::Result;
use crate::ports::{AddressLookup, MAX_FILTER_VALUES};

/// Most addresses looked up per report, the largest talkers first: at most 5 filters of 200
/// values, each one paginated DescribeNetworkInterfaces call.
pub const MAX_LOOKED_UP: usize = 1000;

/// What the lookup did, for the notice's names line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Looked {
    /// Private sources no snapshot named.
    pub unnamed: usize,
    /// Of those, named by an interface the lookup found.
    pub by_interface: usize,
    /// Of those, named by the network they are in.
    pub by_network: usize,
    /// Why part of the lookup could not be done (the rest of the report goes on).
    pub errors: Vec<String>,
}

impl Looked {
    /// `; 3 sources the snapshots did not name looked up in the region: 2 by interface, 1 by network`.
    pub fn sentence(&self) -> String {
        if self.unnamed == 0 && self.errors.is_empty() {
            return String::new();
        }
        let mut s = format!(
            "; {} source(s) the snapshots did not name looked up across the region: {} named by interface, {} by network, {} unknown",
            self.unnamed,
            self.by_interface,
            self.by_network,
            self.unnamed - self.by_interface - self.by_network
        );
        for e in &self.errors {
            s.push_str(&format!(" ({e})"));
        }
        s
    }
}

/// The private sources of `flows` (local address, bytes) that `inventory` names by no
/// interface, largest first, at most [`MAX_LOOKED_UP`].
pub fn unnamed_sources<'a>(inventory: &Inventory, flows: impl Iterator<Item = (IpAddr, u64)> + 'a) -> Vec<IpAddr> {
    let mut bytes: HashMap<IpAddr, u64> = HashMap::new();
    for (ip, b) in flows {
        if is_private(ip) && inventory.holders(&ip).is_empty() {
            *bytes.entry(ip).or_default() += b;
        }
    }
    let mut v: Vec<(IpAddr, u64)> = bytes.into_iter().collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    v.truncate(MAX_LOOKED_UP);
    v.into_iter().map(|(ip, _)| ip).collect()
}

/// Looks `addresses` up and adds what it finds to `inventory`: the interfaces holding them
/// (DescribeNetworkInterfaces, filter `addresses.private-ip-address`, at most 200 values per
/// filter, every page followed by `NextToken`), then the networks the account can see for the
/// ones still unnamed. Best effort: a failure is noted, never raised.
pub async fn look_up(
    inventory: &mut Inventory,
    addresses: &[IpAddr],
    lookup: &(impl AddressLookup + ?Sized),
) -> Looked {
    let mut looked = Looked {
        unnamed: addresses.len(),
        ..Default::default()
    };
    if addresses.is_empty() {
        return looked;
    }
    // The filter matches private IPv4 addresses only (EC2 API reference,
    // DescribeNetworkInterfaces: "addresses.private-ip-address - The private IPv4 addresses
    // associated with the network interface"); IPv6 ones are left to the networks.
    let v4: Vec<String> = addresses
        .iter()
        .filter(|ip| ip.is_ipv4())
        .map(|ip| ip.to_string())
        .collect();
    match interfaces_holding(&v4, lookup).await {
        Ok(found) => {
            for e in found {
                inventory.add(e);
            }
        }
        Err(e) => {
            warn!(error = %e, "looking up unnamed sources by address failed");
            looked.errors.push(format!("interfaces by address: {e}"));
        }
    }
    looked.by_interface = addresses.iter().filter(|ip| !inventory.holders(ip).is_empty()).count();
    if addresses.iter().any(|ip| inventory.holders(ip).is_empty()) {
        match lookup.networks().await {
            Ok(nets) => {
                for n in nets {
                    inventory.add_network(n);
                }
            }
            Err(e) => {
                warn!(error = %e, "the networks this account can see could not be listed");
                looked.errors.push(format!("networks: {e}"));
            }
        }
    }
    looked.by_network = addresses
        .iter()
        .filter(|ip| inventory.holders(ip).is_empty() && inventory.network_of(ip).is_some())
        .count();
    looked
}

/// Every interface holding one of `addresses`: one filter of at most [`MAX_FILTER_VALUES`]
/// values per call, each call paginated.
async fn interfaces_holding(addresses: &[String], lookup: &(impl AddressLookup + ?Sized)) -> Result<Vec<natflow::Eni>> {
    let mut out = Vec::new();
    for batch in addresses.chunks(MAX_FILTER_VALUES) {
        let mut token: Option<String> = None;
        loop {
            let page = lookup.interfaces_page(batch, token.as_deref()).await?;
            out.extend(page.interfaces);
            match page.next_token {
                // EC2 pagination: an empty page with a token is possible; the token ends it.
                Some(t) if !t.is_empty() => token = Some(t),
                _ => break,
            }
        }
    }
    Ok(out)
}
