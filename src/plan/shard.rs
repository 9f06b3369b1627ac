//! The split of a job into N disjoint slices (`--shard I/N`): which series each shard fetches.
//!
//! The work is cut coarse first and finer only where it must be, so that shards make few
//! requests: a service, then its datacenters, then one component's objects in a datacenter,
//! then those objects by the trailing characters of their name (the `vm`, `host` or `datastore`
//! tag), one more character at a time. A piece is cut while it weighs more than a quarter of a
//! shard's even share ([`SLICES_PER_SHARE`]); the weight is the series it holds (objects ×
//! series per object), all of one window, so it is in proportion to the expected points. The
//! pieces then go, heaviest first, each to the shard with the least so far (longest processing
//! time first), which leaves no shard more than one piece above the mean: a quarter share,
//! unless the estate has too few objects to cut that fine.
//!
//! - Deterministic and independent of the inventory's order: pieces are weighed from counts and
//!   ordered by weight, then by names (service, datacenter tag, component, suffix).
//! - Disjoint and covering by construction: the pieces of a piece partition it, and a name's
//!   suffix classes are a partition of every possible value, so a series of an object the
//!   inventory no longer lists (a deleted VM) still falls in exactly one shard. No list of names
//!   is ever sent.
//! - A shard asks for its pieces of a service and component in as few sub-queries as it can:
//!   the datacenters it has whole in one (`datacenter = "a|b"`), each datacenter it has part of
//!   in one more, with a regexp on the object's tag.
//!
//! When an object is added or removed, pieces may change shards from one run to the next; each
//! shard replaces its own files' rows of the window whole, so the union over a window still holds
//! every series once.

use std::cmp::Reverse;
use std::collections::BTreeMap;

use super::{QueryGroup, ServiceScope, NICS_PER_HOST};
use crate::domain::shard::Shard;
use crate::job::{Catalog, Component, Job};

/// A piece is cut further while it weighs more than a shard's even share divided by this: the
/// greedy assignment then ends with every shard within a quarter share of the mean.
pub const SLICES_PER_SHARE: u64 = 4;

/// The classes of one trailing character of a name; with the exact match of the suffix so far,
/// they partition every possible value. One class per digit, since object names end in numbers
/// (`vm-1254`, `172.17.86.51`), often consecutive ones. (The extract stage cuts a page that is too
/// large the same way, on top of a shard's cut.)
const CLASSES: [&str; 11] = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "[^0-9]"];

/// Names are cut by at most this many trailing characters (11³ pieces per datacenter and
/// component), far more than any count of shards needs.
const MAX_DEPTH: usize = 3;

/// The objects whose name ends with the classes `suffix` (the last character's class last), or,
/// `exact`, whose name is exactly that long.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Suffix {
    classes: Vec<usize>,
    exact: bool,
}

impl Suffix {
    /// The regexp body of this suffix, without anchors.
    fn pattern(&self) -> String {
        let body: String = self.classes.iter().map(|&c| CLASSES[c]).collect();
        if self.exact {
            body
        } else {
            format!(".*{body}")
        }
    }

    fn matches(&self, name: &str) -> bool {
        let chars: Vec<char> = name.chars().collect();
        if chars.len() < self.classes.len() || (self.exact && chars.len() != self.classes.len()) {
            return false;
        }
        let tail = &chars[chars.len() - self.classes.len()..];
        tail.iter()
            .zip(&self.classes)
            .all(|(ch, &class)| match class {
                10 => !ch.is_ascii_digit(),
                digit => ch.to_digit(10) == Some(digit as u32),
            })
    }

    /// The suffixes that together hold exactly this one's names; none past [`MAX_DEPTH`].
    fn children(&self) -> Vec<Suffix> {
        if self.exact || self.classes.len() >= MAX_DEPTH {
            return Vec::new();
        }
        let mut children: Vec<Suffix> = (0..CLASSES.len())
            .map(|class| {
                let mut classes = vec![class];
                classes.extend(&self.classes);
                Suffix {
                    classes,
                    exact: false,
                }
            })
            .collect();
        if !self.classes.is_empty() {
            children.push(Suffix {
                classes: self.classes.clone(),
                exact: true,
            });
        }
        children
    }
}

/// The anchored regexp of a set of suffixes: a value matches when it has one of them.
pub fn suffix_regexp(suffixes: &[Suffix]) -> String {
    let alternatives: Vec<String> = suffixes.iter().map(Suffix::pattern).collect();
    format!("^(?:{})$", alternatives.join("|"))
}

/// A piece of the work: a whole service, one of its datacenters, one component's objects there,
/// or those of them whose names end in `suffix`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Piece {
    pub service: usize,
    /// `None`: every datacenter of the service (it is whole, or its series are not selected by
    /// datacenter).
    pub datacenter: Option<usize>,
    /// `None`: every exported component.
    pub component: Option<Component>,
    pub suffix: Option<Suffix>,
}

/// How the work is split: every piece and the shard it goes to.
#[derive(Debug, Clone, PartialEq)]
pub struct Split {
    pub count: u32,
    /// Each piece with its weight (series) and shard index.
    pub pieces: Vec<(Piece, u64, u32)>,
    /// The series of each shard, by index.
    pub loads: Vec<u64>,
    /// Names the assignment: which pieces (by names, not positions) go to which shard. Shards
    /// that computed the same split from their own inventory snapshots have the same one.
    pub fingerprint: String,
}

/// Weighs pieces of the estate for one job.
struct Scale<'a> {
    services: &'a [ServiceScope],
    /// Series per object of each exported component.
    per_object: BTreeMap<Component, u64>,
}

impl Scale<'_> {
    fn components(&self, piece: &Piece) -> Vec<Component> {
        match piece.component {
            Some(c) => vec![c],
            None => self.per_object.keys().copied().collect(),
        }
    }

    /// Objects of `component` in the piece: counted from the names where the inventory gave
    /// them, else estimated as if the service's objects spread evenly over its datacenters and
    /// the names' last characters.
    fn objects(&self, piece: &Piece, component: Component) -> u64 {
        let scope = &self.services[piece.service];
        let names = |d: usize| -> &[String] {
            match scope.objects.get(d) {
                Some(o) => o.names(component),
                None => &[],
            }
        };
        if !scope.objects.is_empty() {
            let datacenters = match piece.datacenter {
                Some(d) => d..d + 1,
                None => 0..scope.objects.len(),
            };
            return datacenters
                .flat_map(|d| names(d).iter())
                .filter(|n| piece.suffix.as_ref().is_none_or(|s| s.matches(n)))
                .count() as u64;
        }
        let mut count = scope.count(component);
        if piece.datacenter.is_some() {
            count = count.div_ceil(scope.datacenter_tags.len().max(1) as u64);
        }
        if let Some(suffix) = &piece.suffix {
            if suffix.exact {
                return 0;
            }
            count = count.div_ceil((CLASSES.len() as u64).pow(suffix.classes.len() as u32));
        }
        count
    }

    /// The series of one component in the piece.
    fn series(&self, piece: &Piece, component: Component) -> u64 {
        self.objects(piece, component) * self.per_object.get(&component).copied().unwrap_or(0)
    }

    fn weight(&self, piece: &Piece) -> u64 {
        self.components(piece)
            .into_iter()
            .map(|c| self.series(piece, c))
            .sum()
    }

    /// The pieces that together are exactly this one; none for a piece that cannot be cut.
    fn children(&self, piece: &Piece) -> Vec<Piece> {
        let scope = &self.services[piece.service];
        match (piece.datacenter, piece.component, &piece.suffix) {
            (None, None, _) if !scope.datacenter_tags.is_empty() => {
                (0..scope.datacenter_tags.len())
                    .map(|d| Piece {
                        datacenter: Some(d),
                        ..piece.clone()
                    })
                    .collect()
            }
            (_, None, _) => self
                .per_object
                .keys()
                .map(|&c| Piece {
                    component: Some(c),
                    ..piece.clone()
                })
                .collect(),
            (_, Some(_), suffix) => {
                // A component's objects are cut by the last characters of their names, one more
                // character at each level.
                let whole = Suffix {
                    classes: Vec::new(),
                    exact: false,
                };
                suffix
                    .as_ref()
                    .unwrap_or(&whole)
                    .children()
                    .into_iter()
                    .map(|s| Piece {
                        suffix: Some(s),
                        ..piece.clone()
                    })
                    .collect()
            }
        }
    }

    /// The names that order pieces of equal weight, whatever the inventory's order.
    fn key(&self, piece: &Piece) -> (String, String, Option<Component>, Option<Suffix>) {
        let scope = &self.services[piece.service];
        (
            scope.service_name.clone(),
            piece
                .datacenter
                .and_then(|d| scope.datacenter_tags.get(d).cloned())
                .unwrap_or_default(),
            piece.component,
            piece.suffix.clone(),
        )
    }
}

/// Series per object of each exported component: one per metric, one per NIC for the metrics
/// reported per NIC.
fn per_object(job: &Job, catalog: &Catalog) -> BTreeMap<Component, u64> {
    let mut per_object = BTreeMap::new();
    for export in job.exports.iter().filter(|e| !e.metrics.is_empty()) {
        let series: u64 = export
            .metrics
            .iter()
            .map(|m| {
                let per_nic = catalog
                    .get(m)
                    .is_some_and(|d| d.tags.iter().any(|t| t == "nicname"));
                if per_nic {
                    NICS_PER_HOST
                } else {
                    1
                }
            })
            .sum();
        *per_object.entry(export.component).or_insert(0) += series;
    }
    per_object
}

/// FNV-1a of `text`, in hex: a name that stays the same from one build and machine to the next
/// (std's hashers promise neither).
fn fingerprint(text: &str) -> String {
    let hash = text.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    format!("{hash:016x}")
}

/// Splits the job's work over `count` shards.
pub fn split(job: &Job, services: &[ServiceScope], count: u32, catalog: &Catalog) -> Split {
    let scale = Scale {
        services,
        per_object: per_object(job, catalog),
    };
    let mut todo: Vec<Piece> = (0..services.len())
        .map(|service| Piece {
            service,
            datacenter: None,
            component: None,
            suffix: None,
        })
        .collect();
    let total: u64 = todo.iter().map(|p| scale.weight(p)).sum();
    let limit = (total / (u64::from(count) * SLICES_PER_SHARE)).max(1);
    let mut leaves = Vec::new();
    while let Some(piece) = todo.pop() {
        let weight = scale.weight(&piece);
        let children = if weight > limit {
            scale.children(&piece)
        } else {
            Vec::new()
        };
        if children.is_empty() {
            leaves.push((scale.key(&piece), piece, weight));
        } else {
            todo.extend(children);
        }
    }
    leaves.sort_by(|a, b| (Reverse(a.2), &a.0).cmp(&(Reverse(b.2), &b.0)));
    let mut loads = vec![0u64; count as usize];
    let mut pieces = Vec::with_capacity(leaves.len());
    let mut assignment = Vec::with_capacity(leaves.len());
    for (key, piece, weight) in leaves {
        let (index, _) = loads
            .iter()
            .enumerate()
            .min_by_key(|&(i, &load)| (load, i))
            .unwrap_or((0, &0));
        loads[index] += weight;
        pieces.push((piece, weight, index as u32));
        assignment.push((key, index));
    }
    assignment.sort();
    Split {
        count,
        pieces,
        loads,
        fingerprint: fingerprint(&format!("{assignment:?}")),
    }
}

/// The query groups of one shard: per service and export, one group for the datacenters it
/// has whole and one per datacenter it has part of.
pub fn groups(
    job: &Job,
    services: &[ServiceScope],
    split: &Split,
    shard: Shard,
    catalog: &Catalog,
) -> Vec<QueryGroup> {
    let scale = Scale {
        services,
        per_object: per_object(job, catalog),
    };
    let mine: Vec<&Piece> = split
        .pieces
        .iter()
        .filter(|(_, _, owner)| *owner == shard.index)
        .map(|(piece, _, _)| piece)
        .collect();
    let mut groups = Vec::new();
    for (service_index, service) in services.iter().enumerate() {
        for export in job.exports.iter().filter(|e| !e.metrics.is_empty()) {
            let component = export.component;
            let mut whole_service = false;
            let mut whole_dcs: Vec<usize> = Vec::new();
            let mut parts: BTreeMap<Option<usize>, Vec<&Piece>> = BTreeMap::new();
            for piece in mine.iter().filter(|p| p.service == service_index) {
                if piece.component.is_some_and(|c| c != component) {
                    continue;
                }
                match (piece.datacenter, &piece.suffix) {
                    (None, None) => whole_service = true,
                    (Some(d), None) => whole_dcs.push(d),
                    (d, Some(_)) => parts.entry(d).or_default().push(piece),
                }
            }
            let group =
                |datacenters: Vec<String>, pieces: &[&Piece], regexp: Option<String>| QueryGroup {
                    service: service_index,
                    component,
                    queries: export
                        .metrics
                        .iter()
                        .map(|metric| {
                            let mut q = super::sub_query(export, metric, &datacenters, catalog);
                            if let Some(regexp) = &regexp {
                                q.regexps
                                    .push((component.entity_tag().to_string(), regexp.clone()));
                            }
                            q
                        })
                        .collect(),
                    series: pieces.iter().map(|p| scale.series(p, component)).sum(),
                };
            if whole_service {
                groups.push(super::service_group(
                    service_index,
                    service,
                    export,
                    catalog,
                ));
                continue;
            }
            if !whole_dcs.is_empty() {
                whole_dcs.sort_unstable();
                let pieces: Vec<Piece> = whole_dcs
                    .iter()
                    .map(|&d| Piece {
                        service: service_index,
                        datacenter: Some(d),
                        component: Some(component),
                        suffix: None,
                    })
                    .collect();
                let refs: Vec<&Piece> = pieces.iter().collect();
                let tags = whole_dcs
                    .iter()
                    .map(|&d| service.datacenter_tags[d].clone())
                    .collect();
                groups.push(group(tags, &refs, None));
            }
            for (datacenter, pieces) in parts {
                let tags = match datacenter {
                    Some(d) => vec![service.datacenter_tags[d].clone()],
                    None => service.datacenter_tags.clone(),
                };
                let mut suffixes: Vec<Suffix> =
                    pieces.iter().filter_map(|p| p.suffix.clone()).collect();
                suffixes.sort();
                groups.push(group(tags, &pieces, Some(suffix_regexp(&suffixes))));
            }
        }
    }
    groups
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::ObjectNames;

    /// Whether a group asks for its datacenters' every object (no regexp on names).
    fn is_whole(group: &QueryGroup) -> bool {
        group.queries.iter().all(|q| q.regexps.is_empty())
    }

    fn job() -> Job {
        let text = "name = \"p\"\n[source]\nendpoint = \"simulator\"\n[window]\nstart = \"2026-10-01\"\nend = \"2026-10-02\"\n\
             [[export]]\ntable = \"vm_metrics\"\nmetrics = \"all\"\n[[export]]\ntable = \"host_metrics\"\nmetrics = \"all\"\n\
             [[export]]\ntable = \"filer_metrics\"\nmetrics = \"all\"\n[output]\npath = \"out\"\n";
        crate::job::parse(std::path::Path::new("p.toml"), text).unwrap()
    }

    /// Services of `dcs` datacenters with `vms` VMs each (morefs with scattered numbers), four
    /// hosts and three datastores; VM counts vary by datacenter so pieces differ in weight.
    fn estate(services: usize, dcs: usize, vms: usize) -> Vec<ServiceScope> {
        let mut n = 100u64;
        (0..services)
            .map(|s| {
                let service_name = format!("pcc-{s}");
                let datacenter_tags: Vec<String> = (0..dcs)
                    .map(|d| format!("{service_name}_datacenter{}", 100 + d))
                    .collect();
                let objects: Vec<ObjectNames> = (0..dcs)
                    .map(|d| ObjectNames {
                        vms: (0..vms + 17 * d)
                            .map(|_| {
                                n += 1 + (n * 7919) % 5;
                                format!("vm-{n}")
                            })
                            .collect(),
                        hosts: (0..4).map(|h| format!("172.17.{d}.{}", 10 + h)).collect(),
                        filers: (0..3).map(|f| format!("pcc-{s}-ds{d}{f}")).collect(),
                    })
                    .collect();
                ServiceScope {
                    service_name,
                    vms: objects.iter().map(|o| o.vms.len() as u64).sum(),
                    hosts: objects.iter().map(|o| o.hosts.len() as u64).sum(),
                    filers: objects.iter().map(|o| o.filers.len() as u64).sum(),
                    datacenter_tags,
                    objects,
                }
            })
            .collect()
    }

    /// Which shard fetches each object's series, by (service, datacenter, component, name),
    /// judged the way the endpoint does: by the groups' datacenter tags and regexps.
    fn owners(
        job: &Job,
        services: &[ServiceScope],
        count: u32,
    ) -> BTreeMap<(String, String, Component, String), Vec<u32>> {
        let catalog = Catalog::builtin();
        let split = split(job, services, count, &catalog);
        let mut owners: BTreeMap<_, Vec<u32>> = BTreeMap::new();
        for index in 0..count {
            let shard = Shard { index, count };
            for group in groups(job, services, &split, shard, &catalog) {
                let service = &services[group.service];
                let q = &group.queries[0];
                let dcs: Vec<&str> = q.tags["datacenter"].split('|').collect();
                let regexps: Vec<regex::Regex> = q
                    .regexps
                    .iter()
                    .map(|(_, r)| regex::Regex::new(r).unwrap())
                    .collect();
                for (d, tag) in service.datacenter_tags.iter().enumerate() {
                    if !dcs.contains(&tag.as_str()) {
                        continue;
                    }
                    // Names the inventory does not know (a deleted VM) too.
                    let extra = ["vm-gone", "vm-77", "x"].map(String::from);
                    for name in service.objects[d]
                        .names(group.component)
                        .iter()
                        .chain(&extra)
                    {
                        if regexps.iter().all(|r| r.is_match(name)) {
                            owners
                                .entry((
                                    service.service_name.clone(),
                                    tag.clone(),
                                    group.component,
                                    name.clone(),
                                ))
                                .or_default()
                                .push(index);
                        }
                    }
                }
            }
        }
        owners
    }

    #[test]
    fn every_series_goes_to_exactly_one_shard() {
        let job = job();
        for (services, dcs, vms, count) in [
            (1, 2, 150, 4),
            (3, 3, 40, 7),
            (1, 1, 500, 16),
            (12, 1, 20, 3),
        ] {
            let estate = estate(services, dcs, vms);
            let owners = owners(&job, &estate, count);
            let objects: usize = estate
                .iter()
                .flat_map(|s| &s.objects)
                .map(|o| o.vms.len() + o.hosts.len() + o.filers.len() + 3 * 3)
                .sum();
            assert_eq!(
                owners.len(),
                objects,
                "every object and unknown name is fetched"
            );
            for (object, shards) in &owners {
                assert_eq!(shards.len(), 1, "{object:?} is fetched by {shards:?}");
            }
        }
    }

    #[test]
    fn shards_are_balanced_by_series() {
        let job = job();
        let catalog = Catalog::builtin();
        for (services, dcs, vms, count) in [
            (1, 2, 150, 4),
            (3, 3, 40, 7),
            (1, 1, 500, 16),
            (12, 1, 20, 3),
        ] {
            let estate = estate(services, dcs, vms);
            let split = split(&job, &estate, count, &catalog);
            let total: u64 = split.loads.iter().sum();
            let whole: u64 = estate
                .iter()
                .map(|s| {
                    s.vms * per_object(&job, &catalog)[&Component::Vm]
                        + s.hosts * per_object(&job, &catalog)[&Component::Host]
                        + s.filers * per_object(&job, &catalog)[&Component::Filer]
                })
                .sum();
            assert_eq!(total, whole, "the loads add up to the job");
            let mean = total as f64 / count as f64;
            let max = *split.loads.iter().max().unwrap() as f64;
            assert!(
                max <= mean * (1.0 + 1.0 / SLICES_PER_SHARE as f64) + 1.0,
                "{services}×{dcs}×{vms} over {count}: loads {:?}",
                split.loads
            );
            // The groups' own series agree with the split's loads.
            for index in 0..count {
                let shard = Shard { index, count };
                let series: u64 = groups(&job, &estate, &split, shard, &catalog)
                    .iter()
                    .map(|g| g.series)
                    .sum();
                assert_eq!(series, split.loads[index as usize], "shard {shard}");
            }
        }
    }

    #[test]
    fn the_split_is_the_same_whatever_the_inventory_order() {
        let job = job();
        let catalog = Catalog::builtin();
        let estate = estate(3, 3, 40);
        let owners_before = owners(&job, &estate, 5);
        let mut shuffled = estate.clone();
        shuffled.reverse();
        for service in &mut shuffled {
            service.datacenter_tags.reverse();
            service.objects.reverse();
            for o in &mut service.objects {
                o.vms.reverse();
                o.hosts.rotate_left(1);
            }
        }
        assert_eq!(owners(&job, &shuffled, 5), owners_before);
        assert_eq!(
            split(&job, &shuffled, 5, &catalog).fingerprint,
            split(&job, &estate, 5, &catalog).fingerprint
        );
        // Another estate: the fingerprint differs exactly when the split does.
        for grow in [1, 30, 200] {
            let mut grown = estate.clone();
            grown[1].objects[2]
                .vms
                .extend((0..grow).map(|i| format!("vm-9{i:03}")));
            let same_split = split(&job, &grown, 5, &catalog)
                .pieces
                .iter()
                .map(|(p, _, o)| (scale_key(&grown, p), *o))
                .collect::<BTreeMap<_, _>>()
                == split(&job, &estate, 5, &catalog)
                    .pieces
                    .iter()
                    .map(|(p, _, o)| (scale_key(&estate, p), *o))
                    .collect::<BTreeMap<_, _>>();
            assert_eq!(
                split(&job, &grown, 5, &catalog).fingerprint
                    == split(&job, &estate, 5, &catalog).fingerprint,
                same_split,
                "{grow} more VMs"
            );
        }
        assert_eq!(
            split(&job, &estate, 5, &catalog),
            split(&job, &estate, 5, &catalog),
            "deterministic"
        );
    }

    #[test]
    fn small_services_stay_whole_and_big_ones_are_cut() {
        let job = job();
        let catalog = Catalog::builtin();
        // Twelve equal small services over three shards: four whole services each.
        let estate = estate(12, 1, 20);
        let three = split(&job, &estate, 3, &catalog);
        for index in 0..3 {
            let groups = groups(&job, &estate, &three, Shard { index, count: 3 }, &catalog);
            assert!(groups.iter().all(is_whole), "shard {index} asks no regexp");
        }
        // One big datacenter over four shards: cut by names, a regexp per group.
        let estate = estate_one_dc();
        let four = split(&job, &estate, 4, &catalog);
        let groups = groups(&job, &estate, &four, Shard { index: 1, count: 4 }, &catalog);
        assert!(groups.iter().any(|g| !is_whole(g)));
        assert!(
            groups.len() <= 3,
            "one group per component: {}",
            groups.len()
        );
    }

    fn scale_key(
        services: &[ServiceScope],
        piece: &Piece,
    ) -> (String, String, Option<Component>, Option<Suffix>) {
        Scale {
            services,
            per_object: BTreeMap::new(),
        }
        .key(piece)
    }

    fn estate_one_dc() -> Vec<ServiceScope> {
        estate(1, 1, 400)
    }

    #[test]
    fn without_names_the_split_still_covers_and_balances() {
        let job = job();
        let catalog = Catalog::builtin();
        let sizes = vec![ServiceScope {
            service_name: "(every service)".into(),
            datacenter_tags: vec![],
            vms: 1000,
            hosts: 40,
            filers: 20,
            objects: vec![],
        }];
        let split = split(&job, &sizes, 4, &catalog);
        let mean = split.loads.iter().sum::<u64>() as f64 / 4.0;
        assert!(
            split.loads.iter().all(|&l| (l as f64) < mean * 1.3),
            "{:?}",
            split.loads
        );
        let regexps: Vec<String> = (0..4)
            .flat_map(|index| groups(&job, &sizes, &split, Shard { index, count: 4 }, &catalog))
            .filter(|g| g.component == Component::Vm)
            .flat_map(|g| g.queries[0].regexps.clone())
            .map(|(_, r)| r)
            .collect();
        for name in ["vm-1", "vm-10", "vm-123", "7", "vm-x", "vm-0"] {
            let hits = regexps
                .iter()
                .filter(|r| regex::Regex::new(r).unwrap().is_match(name))
                .count();
            assert_eq!(hits, 1, "{name} in {regexps:?}");
        }
    }
}
