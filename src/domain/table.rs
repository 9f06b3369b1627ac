//! The tables the exporter writes: one per component's metrics, one per inventory object, each
//! with the columns its rows are sorted by within a file. Their columns are `transform::schema`'s.

use std::fmt;

use super::catalog::Component;

/// One output table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Table {
    VmMetrics,
    HostMetrics,
    FilerMetrics,
    VmInventory,
    HostInventory,
    FilerInventory,
    DatacenterInventory,
}

impl Table {
    pub const ALL: [Table; 7] = [
        Table::VmMetrics,
        Table::HostMetrics,
        Table::FilerMetrics,
        Table::VmInventory,
        Table::HostInventory,
        Table::FilerInventory,
        Table::DatacenterInventory,
    ];

    /// The folder (and `schema` argument) name, e.g. `vm_metrics`.
    pub fn name(self) -> &'static str {
        match self {
            Table::VmMetrics => "vm_metrics",
            Table::HostMetrics => "host_metrics",
            Table::FilerMetrics => "filer_metrics",
            Table::VmInventory => "vm_inventory",
            Table::HostInventory => "host_inventory",
            Table::FilerInventory => "filer_inventory",
            Table::DatacenterInventory => "datacenter_inventory",
        }
    }

    pub fn from_name(name: &str) -> Option<Table> {
        Table::ALL.into_iter().find(|t| t.name() == name)
    }

    /// The metrics table of a component.
    pub fn metrics(component: Component) -> Table {
        match component {
            Component::Vm => Table::VmMetrics,
            Component::Host => Table::HostMetrics,
            Component::Filer => Table::FilerMetrics,
        }
    }

    /// The component whose points this table holds; `None` for the inventories.
    pub fn component(self) -> Option<Component> {
        match self {
            Table::VmMetrics => Some(Component::Vm),
            Table::HostMetrics => Some(Component::Host),
            Table::FilerMetrics => Some(Component::Filer),
            _ => None,
        }
    }

    /// The columns rows are sorted by within a file, in order. Metrics: (entity…, metric, ts);
    /// inventories: (service_name, datacenter_id, id).
    pub fn sorted_by(self) -> &'static [&'static str] {
        match self {
            Table::VmMetrics => &["vm", "metric", "ts"],
            Table::HostMetrics => &["host", "nicname", "metric", "ts"],
            Table::FilerMetrics => &["datastore", "metric", "ts"],
            Table::VmInventory => &["service_name", "datacenter_id", "vm_id"],
            Table::HostInventory => &["service_name", "datacenter_id", "host_id"],
            Table::FilerInventory => &["service_name", "datacenter_id", "filer_id"],
            Table::DatacenterInventory => &["service_name", "datacenter_id"],
        }
    }
}

impl fmt::Display for Table {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_read_back_and_components_have_their_tables() {
        for table in Table::ALL {
            assert_eq!(Table::from_name(table.name()), Some(table));
        }
        assert_eq!(Table::from_name("nope"), None);
        for component in Component::ALL {
            let table = Table::metrics(component);
            assert_eq!(table.component(), Some(component));
            assert_eq!(table.name(), component.table_name());
        }
    }
}
