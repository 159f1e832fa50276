//! One memory budget per plugin instance: `memory_limit_mb` bounds everything the plugin
//! makes the host hold, not one linear memory at a time.
//!
//! [`MemoryBudget`] is the store's [`ResourceLimiter`]. It keeps one running total of
//! - every linear memory (memories only grow, so the total is the sum of the grants);
//! - every table, at [`TABLE_ELEMENT_BYTES`] per element (what wasmtime allocates);
//! - the host-side resources in the store's resource table: [`RESOURCE_ENTRY_BYTES`]
//!   per entry (a Fields, request, response, body, stream or pollable) plus the bytes of
//!   every header held in a wasi:http Fields, request or response;
//! - the HTTP bodies the host holds for the plugin (request bodies being sent, response
//!   bodies not yet read), counted exactly by [`BodyBytes`] and released when dropped.
//!
//! Linear memory and tables are checked when they grow. Host-side resources are checked
//! after every host call ([`check_after_host_call`], installed as the store's call hook):
//! a full scan of the resource table runs only when the total could be within
//! [`MAX_GROWTH_PER_HOST_CALL`] per unscanned call of the limit, so a plugin far from its
//! limit pays a counter increment per host call. Resources a plugin keeps across calls stay
//! counted, so a live instance cannot accumulate host memory: its next growth past the
//! limit traps and the instance is replaced. The resource table itself is capped at
//! [`MAX_RESOURCES`] entries, which also bounds the cost of a scan.
//!
//! A refusal traps with [`MemoryLimitExceeded`] or [`TooManyResources`]. The first keeps
//! wasmtime's wording ("forcing trap when growing memory"), which the source turns into
//! "exceeded its memory limit of N MiB (what grew)"; by how much is logged.

use std::any::Any;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use http::HeaderMap;
use wasmtime::component::ResourceTable;
use wasmtime::{CallHook, ResourceLimiter, StoreContextMut};
use wasmtime_wasi_http::FieldMap;
use wasmtime_wasi_http::p2::types::{
    HostFutureIncomingResponse, HostIncomingResponse, HostOutgoingRequest, HostOutgoingResponse,
};

use super::sandbox::PluginState;

/// Bytes counted per table element: wasmtime stores one pointer per element.
pub const TABLE_ELEMENT_BYTES: usize = size_of::<usize>();
/// Bytes counted per resource-table entry (the entry, its box and bookkeeping).
pub const RESOURCE_ENTRY_BYTES: usize = 256;
/// Bytes counted per header value on top of its name and value (the map's own entry).
pub const HEADER_ENTRY_BYTES: usize = 72;
/// The most entries a plugin's resource table may hold at once.
pub const MAX_RESOURCES: usize = 4096;
/// The most linear memories, tables and core instances in one store.
pub const MAX_MEMORIES: usize = 4;
/// See [`MAX_MEMORIES`].
pub const MAX_TABLES: usize = 64;
/// See [`MAX_MEMORIES`].
pub const MAX_INSTANCES: usize = 64;
/// An upper bound on the host memory one host call can add to the resource table: a
/// Fields filled to wasi:http's per-Fields limit (128 KiB), a copy of a response's headers
/// made by mutating a clone (hyper caps them at about 400 KiB), and a few entries.
pub const MAX_GROWTH_PER_HOST_CALL: usize = 1 << 20;
/// Entries one host call can add to the resource table (a resource and its pollable).
const MAX_ENTRIES_PER_HOST_CALL: usize = 2;

/// The plugin's memory would pass its limit. The message starts with wasmtime's own
/// wording for a refused memory growth, so both read the same to the source.
#[derive(Debug, thiserror::Error)]
#[error(
    "forcing trap when growing memory: {what} would bring the plugin's memory to \
     {total} bytes, over its limit of {limit} bytes"
)]
pub struct MemoryLimitExceeded {
    /// What grew: "linear memory", "a table" or "host-side resources".
    pub what: &'static str,
    /// The total it would have reached, in bytes.
    pub total: usize,
    /// The limit, in bytes.
    pub limit: usize,
}

/// The plugin holds more host resources (handles) than [`MAX_RESOURCES`].
#[derive(Debug, thiserror::Error)]
#[error(
    "the plugin holds {count} host resources (fields, requests, bodies, streams, \
     pollables) at once; the limit is {MAX_RESOURCES}"
)]
pub struct TooManyResources {
    /// How many it holds.
    pub count: usize,
}

/// Bytes of HTTP bodies the host holds for one plugin instance, shared with the wasi:http
/// hooks (whose requests run on other tasks). Each [`BodyCharge`] adds to it until dropped.
#[derive(Clone, Debug, Default)]
pub struct BodyBytes(Arc<AtomicUsize>);

impl BodyBytes {
    /// Counts `bytes` until the returned charge is dropped.
    pub fn charge(&self, bytes: usize) -> BodyCharge {
        self.0.fetch_add(bytes, Ordering::Relaxed);
        BodyCharge {
            bytes,
            total: self.0.clone(),
        }
    }

    /// The bytes currently held.
    pub fn get(&self) -> usize {
        self.0.load(Ordering::Relaxed)
    }
}

/// A body's bytes, counted in its instance's [`BodyBytes`] while this lives.
#[derive(Debug)]
pub struct BodyCharge {
    bytes: usize,
    total: Arc<AtomicUsize>,
}

impl Drop for BodyCharge {
    fn drop(&mut self) {
        self.total.fetch_sub(self.bytes, Ordering::Relaxed);
    }
}

/// The memory budget of one store (see the module comment).
pub struct MemoryBudget {
    provider: Arc<str>,
    limit: usize,
    /// Linear memories and tables, in bytes.
    wasm: usize,
    /// The last grant, undone if the growth then fails.
    last_grant: usize,
    /// Host-side resource-table bytes at the last scan.
    host: usize,
    /// Resource-table entries at the last scan.
    entries: usize,
    /// Host calls since the last scan.
    unscanned_calls: usize,
    bodies: BodyBytes,
}

impl MemoryBudget {
    /// A budget of `limit` bytes for `provider`'s instance, counting `bodies` too.
    pub fn new(provider: Arc<str>, limit: usize, bodies: BodyBytes) -> Self {
        MemoryBudget {
            provider,
            limit,
            wasm: 0,
            last_grant: 0,
            host: 0,
            entries: 0,
            unscanned_calls: 0,
            bodies,
        }
    }

    /// Everything counted at the last look, in bytes.
    pub fn total(&self) -> usize {
        self.wasm
            .saturating_add(self.host)
            .saturating_add(self.bodies.get())
    }

    /// Grants `grow` more bytes of `what`, or refuses with the error that traps.
    fn grow(&mut self, what: &'static str, grow: usize) -> Result<(), MemoryLimitExceeded> {
        let total = self.total().saturating_add(grow);
        if total > self.limit {
            return Err(self.refuse(what, total));
        }
        self.wasm += grow;
        self.last_grant = grow;
        Ok(())
    }

    fn refuse(&self, what: &'static str, total: usize) -> MemoryLimitExceeded {
        tracing::warn!(
            provider = %self.provider,
            "plugin stopped: {what} would bring its memory to {total} bytes \
             (linear memory and tables {}, host resources {}, HTTP bodies {}), over its \
             limit of {} bytes",
            self.wasm,
            self.host,
            self.bodies.get(),
            self.limit
        );
        MemoryLimitExceeded {
            what,
            total,
            limit: self.limit,
        }
    }

    /// Called after each host call: rescans the resource table when the unscanned calls
    /// could have brought the total to the limit, and refuses past it.
    fn after_host_call(&mut self, table: &mut ResourceTable) -> wasmtime::Result<()> {
        self.unscanned_calls += 1;
        let host_bound = self
            .host
            .saturating_add(self.unscanned_calls * MAX_GROWTH_PER_HOST_CALL);
        let entries_bound = self.entries + self.unscanned_calls * MAX_ENTRIES_PER_HOST_CALL;
        let bound = self
            .wasm
            .saturating_add(host_bound)
            .saturating_add(self.bodies.get());
        if bound <= self.limit && entries_bound < MAX_RESOURCES {
            return Ok(());
        }
        let (entries, host) = scan(table);
        self.entries = entries;
        self.host = host;
        self.unscanned_calls = 0;
        if entries >= MAX_RESOURCES {
            tracing::warn!(provider = %self.provider, "plugin stopped: it holds {entries} host resources");
            return Err(TooManyResources { count: entries }.into());
        }
        let total = self.total();
        if total > self.limit {
            return Err(self.refuse("host-side resources", total).into());
        }
        Ok(())
    }
}

/// The store's call hook: checks the budget each time a host call returns to the guest.
pub fn check_after_host_call(
    mut store: StoreContextMut<'_, PluginState>,
    hook: CallHook,
) -> wasmtime::Result<()> {
    if !matches!(hook, CallHook::ReturningFromHost) {
        return Ok(());
    }
    let state = store.data_mut();
    state.limits.after_host_call(&mut state.table)
}

impl ResourceLimiter for MemoryBudget {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        self.grow("linear memory", desired.saturating_sub(current))?;
        Ok(true)
    }

    fn memory_grow_failed(&mut self, _error: wasmtime::Error) -> wasmtime::Result<()> {
        self.wasm -= std::mem::take(&mut self.last_grant);
        Ok(())
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let elements = desired.saturating_sub(current);
        self.grow("a table", elements.saturating_mul(TABLE_ELEMENT_BYTES))?;
        Ok(true)
    }

    fn table_grow_failed(&mut self, _error: wasmtime::Error) -> wasmtime::Result<()> {
        self.wasm -= std::mem::take(&mut self.last_grant);
        Ok(())
    }

    fn instances(&self) -> usize {
        MAX_INSTANCES
    }

    fn tables(&self) -> usize {
        MAX_TABLES
    }

    fn memories(&self) -> usize {
        MAX_MEMORIES
    }
}

/// Counts the entries of `table` and the host bytes they hold.
fn scan(table: &mut ResourceTable) -> (usize, usize) {
    let mut entries = 0;
    let mut bytes = 0;
    for entry in table.iter_mut() {
        entries += 1;
        bytes += RESOURCE_ENTRY_BYTES + entry_headers(entry);
    }
    (entries, bytes)
}

/// The header bytes one resource-table entry holds, if it is a wasi:http type with headers.
fn entry_headers(entry: &(dyn Any + Send)) -> usize {
    if let Some(fields) = entry.downcast_ref::<FieldMap>() {
        header_bytes(fields)
    } else if let Some(request) = entry.downcast_ref::<HostOutgoingRequest>() {
        header_bytes(&request.headers)
    } else if let Some(response) = entry.downcast_ref::<HostIncomingResponse>() {
        header_bytes(&response.headers)
    } else if let Some(response) = entry.downcast_ref::<HostOutgoingResponse>() {
        header_bytes(&response.headers)
    } else if let Some(HostFutureIncomingResponse::Ready(Ok((response, _)))) =
        entry.downcast_ref::<HostFutureIncomingResponse>()
    {
        header_bytes(response.headers())
    } else {
        0
    }
}

fn header_bytes(map: &HeaderMap) -> usize {
    map.iter()
        .map(|(name, value)| name.as_str().len() + value.len() + HEADER_ENTRY_BYTES)
        .sum()
}

/// Installs `budget` checks on a store: call after `Store::new`. Kept here so the
/// source needs one line for every limit.
pub fn install(store: &mut wasmtime::Store<PluginState>) {
    store.limiter(|state| &mut state.limits);
    store.call_hook(check_after_host_call);
}

#[cfg(test)]
mod tests {
    //! The budget with real wasm: core modules from WAT, instantiated in a store whose
    //! limiter is a [`MemoryBudget`], as a plugin's is.

    use super::*;
    use wasmtime::{Engine, Instance, Module, Store};

    const MIB: usize = 1 << 20;

    fn instantiate(wat: &str, limit: usize) -> wasmtime::Result<Store<MemoryBudget>> {
        let engine = Engine::default();
        let module = Module::new(&engine, wat)?;
        let budget = MemoryBudget::new("p".into(), limit, BodyBytes::default());
        let mut store = Store::new(&engine, budget);
        store.limiter(|budget| budget);
        Instance::new(&mut store, &module, &[])?;
        Ok(store)
    }

    fn refused(result: wasmtime::Result<Store<MemoryBudget>>) -> String {
        let error = result.err().expect("over the limit");
        let text = format!("{error:#}");
        assert!(
            text.contains("forcing trap when growing memory"),
            "the source recognises this wording: {text}"
        );
        text
    }

    #[test]
    fn all_linear_memories_share_one_limit() {
        // Four memories of 20 MiB each: each fits a 64 MiB limit, together they do not.
        let wat = "(module (memory 320) (memory 320) (memory 320) (memory 320))";
        let text = refused(instantiate(wat, 64 * MIB));
        assert!(text.contains("linear memory"), "{text}");
        let store = instantiate(wat, 81 * MIB).unwrap();
        assert_eq!(store.data().total(), 80 * MIB);
    }

    #[test]
    fn tables_count_at_their_element_size() {
        // 60 tables of 2^20 funcrefs: 480 MiB of host memory, at a 1 MiB limit.
        let tables = "(table 1048576 funcref) ".repeat(60);
        let text = refused(instantiate(&format!("(module {tables})"), MIB));
        assert!(text.contains("a table"), "{text}");
        // One table of 2^16 elements (512 KiB) fits.
        instantiate("(module (table 65536 funcref))", MIB).unwrap();
    }

    #[test]
    fn memory_growth_counts_and_a_refused_growth_traps() {
        let wat = r#"(module (memory 1 40)
            (func (export "grow") (param i32) (result i32) (memory.grow (local.get 0))))"#;
        let engine = Engine::default();
        let module = Module::new(&engine, wat).unwrap();
        let budget = MemoryBudget::new("p".into(), 4 * MIB, BodyBytes::default());
        let mut store = Store::new(&engine, budget);
        store.limiter(|budget| budget);
        let instance = Instance::new(&mut store, &module, &[]).unwrap();
        let grow = instance
            .get_typed_func::<i32, i32>(&mut store, "grow")
            .unwrap();
        assert_eq!(grow.call(&mut store, 31).unwrap(), 1);
        assert_eq!(store.data().total(), 2 * MIB);
        // Past the memory's own maximum (40 pages): fails as wasm says, not counted.
        assert_eq!(grow.call(&mut store, 16).unwrap(), -1);
        assert_eq!(store.data().total(), 2 * MIB);
        // Past the budget: traps, so the host can say why.
        let module = Module::new(
            &engine,
            r#"(module (memory 32)
            (func (export "grow") (param i32) (result i32) (memory.grow (local.get 0))))"#,
        )
        .unwrap();
        let instance = Instance::new(&mut store, &module, &[]).unwrap();
        let grow = instance
            .get_typed_func::<i32, i32>(&mut store, "grow")
            .unwrap();
        let err = grow.call(&mut store, 1).unwrap_err();
        assert!(format!("{err:#}").contains("forcing trap"), "{err:#}");
        assert_eq!(store.data().total(), 4 * MIB);
    }

    #[test]
    fn body_bytes_count_until_dropped() {
        let bodies = BodyBytes::default();
        let mut budget = MemoryBudget::new("p".into(), 2 * MIB, bodies.clone());
        let charge = bodies.charge(MIB + 1);
        assert!(budget.grow("linear memory", MIB).is_err());
        drop(charge);
        assert_eq!(bodies.get(), 0);
        budget.grow("linear memory", MIB).unwrap();
    }

    #[test]
    fn host_resources_are_scanned_before_they_can_pass_the_limit() {
        let mut table = ResourceTable::new();
        let mut budget = MemoryBudget::new("p".into(), 4 * MIB, BodyBytes::default());
        let value = http::HeaderValue::from_bytes(&vec![b'v'; 100 << 10]).unwrap();
        let mut passed = 0;
        let error = loop {
            let mut fields = FieldMap::new_mutable(128 << 10);
            fields
                .append_raw(http::header::ACCEPT, value.clone())
                .unwrap();
            table.push(fields).unwrap();
            match budget.after_host_call(&mut table) {
                Ok(()) => passed += 1,
                Err(e) => break e,
            }
        };
        // 4 MiB holds 40 such Fields, not 41.
        assert_eq!(passed, 40, "{error:#}");
        let text = format!("{error:#}");
        assert!(text.contains("host-side resources"), "{text}");
    }
}
