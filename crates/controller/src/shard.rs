//! Sharding: several controller replicas split the applications between
//! them by destination cluster, as Argo CD's application controller does
//! (its `legacy` method: a hash of the cluster modulo the replicas; the
//! cluster gitplane runs in is shard 0). Each shard elects its own leader.

use std::str::FromStr;

use crate::spec::Destination;

/// Which share of the applications a replica works on: `index` of `count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// This replica's shard, from 0.
    pub index: u32,
    /// How many shards there are.
    pub count: u32,
}

impl FromStr for Shard {
    type Err = String;

    /// `N/M`: shard N of M (0 ≤ N < M).
    fn from_str(text: &str) -> Result<Shard, String> {
        let (index, count) = text
            .split_once('/')
            .ok_or_else(|| format!("{text:?}: expected N/M, such as 0/3"))?;
        let parse = |t: &str| {
            t.trim()
                .parse::<u32>()
                .map_err(|_| format!("{text:?}: {t:?} is not a number"))
        };
        let (index, count) = (parse(index)?, parse(count)?);
        if count == 0 || index >= count {
            return Err(format!(
                "{text:?}: the shard must be 0 to {}",
                count.saturating_sub(1)
            ));
        }
        Ok(Shard { index, count })
    }
}

impl Shard {
    /// Whether this shard works on applications deploying to `destination`.
    pub fn owns(&self, destination: &Destination) -> bool {
        shard_of(destination, self.count) == self.index
    }
}

/// The shard of a destination cluster among `count`: 0 for the cluster
/// gitplane runs in, else FNV-1a of its server URL (or name) modulo `count`.
pub fn shard_of(destination: &Destination, count: u32) -> u32 {
    if destination.is_in_cluster() || count <= 1 {
        return 0;
    }
    let id = if destination.server.is_empty() {
        &destination.name
    } else {
        &destination.server
    };
    fnv1a(id.trim_end_matches('/').as_bytes()) % count
}

fn fnv1a(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0x811c_9dc5u32, |hash, b| {
        (hash ^ u32::from(*b)).wrapping_mul(0x0100_0193)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn to(server: &str) -> Destination {
        Destination {
            server: server.into(),
            ..Destination::default()
        }
    }

    #[test]
    fn shards_parse_and_split_by_cluster() {
        assert_eq!("1/3".parse(), Ok(Shard { index: 1, count: 3 }));
        assert!("3/3".parse::<Shard>().is_err());
        assert!("x".parse::<Shard>().is_err());
        assert_eq!(shard_of(&to("https://kubernetes.default.svc"), 3), 0);
        assert_eq!(fnv1a(b"a"), 0xe40c_292c);
        let servers = [
            "https://a.example",
            "https://b.example",
            "https://c.example",
            "https://d.example",
        ];
        let shards: Vec<u32> = servers.iter().map(|s| shard_of(&to(s), 2)).collect();
        assert!(shards.contains(&0) && shards.contains(&1), "{shards:?}");
        assert_eq!(
            shard_of(&to("https://a.example/"), 2),
            shard_of(&to("https://a.example"), 2)
        );
    }
}
