//! The metric catalog: the product guide's 20 metrics, their component, unit and labels, read from
//! `schemas/metrics.toml` (compiled in). `metrics = "all"` expands through it; a metric that is not
//! in it may still be exported, with a warning, since OVH serves more than the guide lists.

use std::fmt;

use serde::Deserialize;

/// The three kinds of object vScope monitors; each has its own metrics table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Component {
    Vm,
    Host,
    Filer,
}

impl Component {
    pub const ALL: [Component; 3] = [Component::Vm, Component::Host, Component::Filer];

    /// The metrics table this component's points go to.
    pub fn table_name(self) -> &'static str {
        match self {
            Component::Vm => "vm_metrics",
            Component::Host => "host_metrics",
            Component::Filer => "filer_metrics",
        }
    }

    /// The tag that names one object of this component in the metrics.
    pub fn entity_tag(self) -> &'static str {
        match self {
            Component::Vm => "vm",
            Component::Host => "host",
            Component::Filer => "datastore",
        }
    }

    /// The component whose metrics table is `table`.
    pub fn from_table(table: &str) -> Option<Component> {
        Component::ALL.into_iter().find(|c| c.table_name() == table)
    }

    /// The metric-name prefix of this component, e.g. `vscope.vm.`.
    pub fn metric_prefix(self) -> &'static str {
        match self {
            Component::Vm => "vscope.vm.",
            Component::Host => "vscope.host.",
            Component::Filer => "vscope.filer.",
        }
    }
}

impl fmt::Display for Component {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Component::Vm => "vm",
            Component::Host => "host",
            Component::Filer => "filer",
        })
    }
}

/// One metric of the catalog.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricDef {
    pub name: String,
    pub component: Component,
    pub unit: String,
    pub description: String,
    /// The labels every series of the metric carries, e.g. `["datacenter", "vm"]`.
    pub tags: Vec<String>,
}

/// Every metric the guide documents.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Catalog {
    #[serde(rename = "metric")]
    pub metrics: Vec<MetricDef>,
}

/// The catalog file, compiled in so the binary needs nothing beside it.
const CATALOG_TOML: &str = include_str!("../../schemas/metrics.toml");

impl Catalog {
    /// The catalog shipped with the tool.
    #[allow(clippy::expect_used, reason = "the catalog is compiled in and tested")]
    pub fn builtin() -> Catalog {
        // Cannot fail for a released binary: the file is compiled in and a unit test parses it.
        toml::from_str(CATALOG_TOML).expect("schemas/metrics.toml is a valid catalog")
    }

    pub fn get(&self, name: &str) -> Option<&MetricDef> {
        self.metrics.iter().find(|m| m.name == name)
    }

    /// The catalog's metrics of one component, in catalog order.
    pub fn for_component(&self, component: Component) -> impl Iterator<Item = &MetricDef> {
        self.metrics
            .iter()
            .filter(move |m| m.component == component)
    }

    /// The catalog name closest to `name` (edit distance), for "did you mean" hints.
    pub fn closest(&self, name: &str) -> Option<&str> {
        self.metrics
            .iter()
            .map(|m| (edit_distance(name, &m.name), m.name.as_str()))
            .min()
            .filter(|(d, _)| *d <= name.len().max(4) / 2)
            .map(|(_, n)| n)
    }
}

/// Levenshtein distance over bytes; names here are short ASCII.
fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, ca) in a.iter().enumerate() {
        cur[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_builtin_catalog_holds_the_guides_twenty_metrics() {
        let catalog = Catalog::builtin();
        assert_eq!(catalog.metrics.len(), 20);
        assert_eq!(catalog.for_component(Component::Vm).count(), 13);
        assert_eq!(catalog.for_component(Component::Host).count(), 6);
        assert_eq!(catalog.for_component(Component::Filer).count(), 1);
        for m in &catalog.metrics {
            assert!(
                m.name.starts_with(m.component.metric_prefix()),
                "{}",
                m.name
            );
            assert!(
                m.tags.contains(&m.component.entity_tag().to_string()),
                "{}",
                m.name
            );
        }
    }

    #[test]
    fn a_misspelt_metric_gets_the_closest_name() {
        let catalog = Catalog::builtin();
        assert_eq!(
            catalog.closest("vscope.vm.cpu.usage.pct"),
            Some("vscope.vm.cpu.usage.perc")
        );
        assert_eq!(
            catalog.closest("vscope.host.net.tx"),
            Some("vscope.host.net.tx")
        );
        assert_eq!(catalog.closest("disk"), None);
    }
}
