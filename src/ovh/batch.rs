//! Reading many objects of one collection: batch reads (`X-Ovh-Batch: ,` and
//! `GET …/vm/{id1},{id2},…`, undocumented but used by OVH's control panel) where the endpoint
//! answers them, single GETs where it does not. Objects come and go: one that vanished between
//! the list and the read (404) is skipped with a warning.

use std::collections::HashMap;
use std::sync::atomic::Ordering;

use futures_util::future::try_join_all;
use reqwest::Method;
use serde::de::DeserializeOwned;
use serde::Deserialize;

use super::client::{decode, Client};
use super::model::{Datacenter, Filer, Host, User, Vm};
use super::OvhError;

/// A model object with its APIv6 id, so that reads come back in id order.
pub trait HasId {
    fn id(&self) -> i64;
}

impl HasId for Datacenter {
    fn id(&self) -> i64 {
        self.datacenter_id
    }
}
impl HasId for Host {
    fn id(&self) -> i64 {
        self.host_id
    }
}
impl HasId for Vm {
    fn id(&self) -> i64 {
        self.vm_id
    }
}
impl HasId for Filer {
    fn id(&self) -> i64 {
        self.filer_id
    }
}
impl HasId for User {
    fn id(&self) -> i64 {
        self.user_id
    }
}

/// One item of a batch answer, read leniently: `key` as a string or a number, `error` as any
/// JSON (`BatchItem` in the model is the strict wire form).
#[derive(Deserialize)]
struct LenientItem {
    key: serde_json::Value,
    #[serde(default)]
    value: Option<serde_json::Value>,
    #[serde(default)]
    error: Option<serde_json::Value>,
}

impl LenientItem {
    fn key(&self) -> Option<String> {
        match &self.key {
            serde_json::Value::String(s) => Some(s.trim().to_string()),
            serde_json::Value::Number(n) => Some(n.to_string()),
            _ => None,
        }
    }
}

impl Client {
    /// The objects `{collection}/{id}` for `ids`, sorted by id, without those that no longer
    /// exist. `collection` is an escaped path below the base URL; `what` names the model.
    pub(crate) async fn read_objects<T>(
        &self,
        collection: &str,
        ids: &[i64],
        what: &'static str,
    ) -> Result<Vec<T>, OvhError>
    where
        T: DeserializeOwned + HasId,
    {
        let mut ids = ids.to_vec();
        ids.sort_unstable();
        ids.dedup();
        let mut objects: Vec<T> = if ids.len() > 1 && self.batch_works() {
            let chunks = ids
                .chunks(self.inner.batch_size)
                .map(|chunk| self.read_chunk::<T>(collection, chunk, what));
            try_join_all(chunks).await?.into_iter().flatten().collect()
        } else {
            self.read_singles(collection, &ids, what).await?
        };
        objects.sort_by_key(HasId::id);
        Ok(objects)
    }

    fn batch_works(&self) -> bool {
        self.inner.batch_works.load(Ordering::Relaxed)
    }

    /// Batch reads are not answered here: use single GETs from now on.
    fn give_up_batch(&self, collection: &str, why: &str) {
        if self.inner.batch_works.swap(false, Ordering::Relaxed) {
            tracing::warn!(
                collection,
                reason = why,
                "APIv6 batch reads are not answered; reading objects one by one from now on."
            );
        }
    }

    async fn read_chunk<T>(
        &self,
        collection: &str,
        ids: &[i64],
        what: &'static str,
    ) -> Result<Vec<T>, OvhError>
    where
        T: DeserializeOwned + HasId,
    {
        if ids.len() == 1 || !self.batch_works() {
            return self.read_singles(collection, ids, what).await;
        }
        let joined = ids.iter().map(i64::to_string).collect::<Vec<_>>().join(",");
        let answer = match self.get_batch(&format!("{collection}/{joined}")).await {
            Ok(answer) => answer,
            Err(e @ (OvhError::Api { .. } | OvhError::Transport { .. })) => {
                if e.is_transient() {
                    // A bad moment, not proof that batches are unsupported: this chunk only.
                    tracing::debug!(collection, error = %e, "Batch read failed; reading its objects one by one.");
                } else {
                    self.give_up_batch(collection, &e.to_string());
                }
                return self.read_singles(collection, ids, what).await;
            }
            Err(e) => return Err(e),
        };
        let items: Vec<LenientItem> = match serde_json::from_slice(&answer.body) {
            Ok(items) => items,
            Err(e) => {
                self.give_up_batch(
                    collection,
                    &format!("the answer is not a list of {{key, value, error}} items: {e}"),
                );
                return self.read_singles(collection, ids, what).await;
            }
        };

        let mut by_key: HashMap<String, LenientItem> = HashMap::with_capacity(items.len());
        for item in items {
            if let Some(key) = item.key() {
                by_key.insert(key, item);
            }
        }
        let mut objects = Vec::with_capacity(ids.len());
        let mut retry = Vec::new();
        for &id in ids {
            match by_key.remove(&id.to_string()) {
                Some(LenientItem {
                    value: Some(value),
                    error: None | Some(serde_json::Value::Null),
                    ..
                }) if !value.is_null() => {
                    let object =
                        serde_json::from_value::<T>(value).map_err(|source| OvhError::Decode {
                            method: Method::GET.to_string(),
                            url: format!("{} (item {id})", answer.url),
                            expected: what,
                            query_id: answer.query_id.clone(),
                            source: Some(source),
                        })?;
                    objects.push(object);
                }
                Some(item) => {
                    let error = item.error.map(|e| match e {
                        serde_json::Value::String(s) => s,
                        other => other.to_string(),
                    });
                    tracing::debug!(
                        collection,
                        id,
                        error = error.as_deref().unwrap_or("no value"),
                        "Batch item failed; reading it alone."
                    );
                    retry.push(id);
                }
                None => {
                    tracing::debug!(
                        collection,
                        id,
                        "Batch answer lacks an item; reading it alone."
                    );
                    retry.push(id);
                }
            }
        }
        objects.extend(self.read_singles(collection, &retry, what).await?);
        Ok(objects)
    }

    async fn read_singles<T>(
        &self,
        collection: &str,
        ids: &[i64],
        what: &'static str,
    ) -> Result<Vec<T>, OvhError>
    where
        T: DeserializeOwned,
    {
        let reads = ids
            .iter()
            .map(|&id| self.read_one::<T>(collection, id, what));
        Ok(try_join_all(reads).await?.into_iter().flatten().collect())
    }

    /// `GET {collection}/{id}`; `None` when the object no longer exists.
    async fn read_one<T>(
        &self,
        collection: &str,
        id: i64,
        what: &'static str,
    ) -> Result<Option<T>, OvhError>
    where
        T: DeserializeOwned,
    {
        let path = format!("{collection}/{id}");
        match self.get_single(&path).await {
            Ok(answer) => decode(&Method::GET, &answer, what).map(Some),
            Err(e) if e.status() == Some(404) => {
                tracing::warn!(
                    collection,
                    id,
                    query_id = e.query_id().unwrap_or(""),
                    "Object listed but gone when read; skipping it."
                );
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ovh::fake::{estate, manual_clock, start, BatchMode, Fake, SERVICE};

    const VMS: &str = "/dedicatedCloud/pcc-37-187-228-180/datacenter/10/vm";

    async fn fake_with(
        vms: i64,
        setup: impl FnOnce(&mut crate::ovh::fake::World),
    ) -> (Fake, Client) {
        let mut world = estate(vms);
        setup(&mut world);
        let fake = start(world).await;
        let client = fake.signed_client(manual_clock(0).0).await;
        fake.clear_seen();
        (fake, client)
    }

    fn vm_ids(vms: &[Vm]) -> Vec<i64> {
        vms.iter().map(|v| v.vm_id).collect()
    }

    #[tokio::test]
    async fn objects_are_read_in_batches_of_forty_and_sorted_by_id() {
        let (fake, client) = fake_with(45, |_| {}).await;
        let mut ids: Vec<i64> = (1000..1045).collect();
        ids.reverse();
        let vms: Vec<Vm> = client.read_objects(VMS, &ids, "Vm").await.unwrap();
        assert_eq!(vm_ids(&vms), (1000..1045).collect::<Vec<_>>());
        assert_eq!(vms[3].mo_ref, "vm-1003");
        let calls = fake.calls();
        assert_eq!(calls.len(), 2, "{calls:?}");
        let first: Vec<String> = (1000..1040).map(|i| i.to_string()).collect();
        assert!(
            calls.contains(&format!("GET {VMS}/{} [batch]", first.join(","))),
            "{calls:?}"
        );
        assert!(
            calls.contains(&format!("GET {VMS}/1040,1041,1042,1043,1044 [batch]")),
            "{calls:?}"
        );
    }

    #[tokio::test]
    async fn a_refused_batch_falls_back_to_single_reads_and_is_not_tried_again() {
        let (fake, client) = fake_with(5, |w| w.batch = BatchMode::Refused).await;
        let ids: Vec<i64> = (1000..1005).collect();
        let vms: Vec<Vm> = client.read_objects(VMS, &ids, "Vm").await.unwrap();
        assert_eq!(vm_ids(&vms), ids);
        let calls = fake.calls();
        assert_eq!(
            calls[0],
            format!("GET {VMS}/1000,1001,1002,1003,1004 [batch]")
        );
        assert_eq!(calls.len(), 6, "{calls:?}");

        fake.clear_seen();
        let again: Vec<Vm> = client.read_objects(VMS, &ids, "Vm").await.unwrap();
        assert_eq!(again, vms);
        let calls = fake.calls();
        assert_eq!(calls.len(), 5, "{calls:?}");
        assert!(calls.iter().all(|c| !c.ends_with("[batch]")), "{calls:?}");
    }

    #[tokio::test]
    async fn a_batch_answer_that_is_not_a_list_of_items_falls_back_too() {
        let (fake, client) = fake_with(3, |w| w.batch = BatchMode::Garbage).await;
        let ids: Vec<i64> = (1000..1003).collect();
        let vms: Vec<Vm> = client.read_objects(VMS, &ids, "Vm").await.unwrap();
        assert_eq!(vm_ids(&vms), ids);
        assert_eq!(fake.calls().len(), 4);
        assert!(!client.batch_works());
    }

    #[tokio::test]
    async fn a_failed_batch_item_is_read_again_alone() {
        let (fake, client) = fake_with(4, |w| {
            w.batch_item_errors.insert(1002);
        })
        .await;
        let ids: Vec<i64> = (1000..1004).collect();
        let vms: Vec<Vm> = client.read_objects(VMS, &ids, "Vm").await.unwrap();
        assert_eq!(vm_ids(&vms), ids);
        assert_eq!(
            fake.calls(),
            vec![
                format!("GET {VMS}/1000,1001,1002,1003 [batch]"),
                format!("GET {VMS}/1002"),
            ]
        );
        assert!(
            client.batch_works(),
            "one bad item says nothing about batches"
        );
    }

    #[tokio::test]
    async fn an_object_deleted_between_list_and_read_is_skipped() {
        for batch in [BatchMode::Answered, BatchMode::Refused] {
            let (_fake, client) = fake_with(4, |w| {
                w.batch = batch;
                w.vanished.insert(1001);
            })
            .await;
            let ids: Vec<i64> = (1000..1004).collect();
            let vms: Vec<Vm> = client.read_objects(VMS, &ids, "Vm").await.unwrap();
            assert_eq!(vm_ids(&vms), vec![1000, 1002, 1003], "{batch:?}");
        }
    }

    #[tokio::test]
    async fn other_single_read_errors_are_not_swallowed() {
        let (_fake, client) = fake_with(2, |w| {
            w.batch = BatchMode::Refused;
            w.overrides.insert(
                format!("/dedicatedCloud/{SERVICE}/datacenter/10/vm/1001"),
                (
                    403,
                    "application/json",
                    r#"{"class":"Client::Forbidden","message":"nope"}"#.into(),
                ),
            );
        })
        .await;
        let err = client
            .read_objects::<Vm>(VMS, &[1000, 1001], "Vm")
            .await
            .unwrap_err();
        assert_eq!(err.status(), Some(403), "{err}");
        assert!(err.to_string().contains("/vm/1001"), "{err}");
    }

    #[tokio::test]
    async fn a_batch_item_that_is_not_the_model_is_a_decode_error() {
        let (_fake, client) = fake_with(0, |w| {
            let vms = w.objects.get_mut(VMS).unwrap();
            vms.insert(
                1,
                serde_json::json!({"vmId": 1, "moRef": "vm-1", "powerState": "poweredOn"}),
            );
            vms.insert(2, serde_json::json!({"vmId": "two"}));
        })
        .await;
        let err = client
            .read_objects::<Vm>(VMS, &[1, 2], "Vm")
            .await
            .unwrap_err();
        assert!(
            matches!(err, OvhError::Decode { expected: "Vm", .. }),
            "{err:?}"
        );
        assert!(err.to_string().contains("(item 2)"), "{err}");
    }
}
