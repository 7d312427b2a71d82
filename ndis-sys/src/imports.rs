//! The functions rawnic imports from `ndis.sys`, `ntoskrnl.exe` and
//! `HAL.dll`, each with the IRQL its documentation requires (ndisim's
//! verifier enforces them).
//!
//! On Windows targets each block becomes a `raw-dylib` import, so no import
//! library is needed. On every target each function also gets a pointer type
//! in `pfn`, spelled with the `win64` ABI; ndisim coerces its emulated
//! exports to these types, so the compiler checks that the emulation and the
//! driver agree on every signature.

use crate::ndis::*;
use crate::types::*;
use crate::wdm::*;

macro_rules! imports {
    (
        $module:ident, $dll:literal;
        $(
            $(#[doc = $doc:literal])*
            pub fn $name:ident ( $($arg:ident : $aty:ty),* $(,)? ) $(-> $ret:ty)? ;
        )*
    ) => {
        #[cfg(windows)]
        #[link(name = $dll, kind = "raw-dylib", modifiers = "+verbatim")]
        unsafe extern "system" {
            $(
                $(#[doc = $doc])*
                pub fn $name($($arg: $aty),*) $(-> $ret)?;
            )*
        }

        /// Pointer types of the functions imported from this module.
        pub mod $module {
            #[allow(unused_imports)]
            use super::*;
            /// The module's file name as the import table spells it.
            pub const DLL: &str = $dll;
            /// Every function imported from it.
            pub const NAMES: &[&str] = &[$(stringify!($name)),*];
            $(
                #[allow(non_camel_case_types)]
                pub type $name = unsafe extern "win64" fn($($aty),*) $(-> $ret)?;
            )*
        }
    };
}

imports! {
    ndis_imports, "ndis.sys";
    /// IRQL: PASSIVE_LEVEL.
    pub fn NdisRegisterProtocolDriver(
        protocol_driver_context: NDIS_HANDLE,
        protocol_characteristics: *mut NDIS_PROTOCOL_DRIVER_CHARACTERISTICS,
        ndis_protocol_handle: *mut NDIS_HANDLE,
    ) -> NDIS_STATUS;
    /// IRQL: PASSIVE_LEVEL.
    pub fn NdisDeregisterProtocolDriver(ndis_protocol_handle: NDIS_HANDLE);
    /// IRQL: PASSIVE_LEVEL; not from ProtocolBindAdapterEx,
    /// ProtocolUnbindAdapterEx, or ProtocolNetPnPEvent with a binding context.
    pub fn NdisReEnumerateProtocolBindings(ndis_protocol_handle: NDIS_HANDLE);
    /// IRQL: PASSIVE_LEVEL.
    pub fn NdisOpenAdapterEx(
        ndis_protocol_handle: NDIS_HANDLE,
        protocol_binding_context: NDIS_HANDLE,
        open_parameters: *mut NDIS_OPEN_PARAMETERS,
        bind_context: NDIS_HANDLE,
        ndis_binding_handle: *mut NDIS_HANDLE,
    ) -> NDIS_STATUS;
    /// IRQL: <= DISPATCH_LEVEL.
    pub fn NdisCompleteBindAdapterEx(bind_adapter_context: NDIS_HANDLE, status: NDIS_STATUS);
    /// IRQL: PASSIVE_LEVEL.
    pub fn NdisCloseAdapterEx(ndis_binding_handle: NDIS_HANDLE) -> NDIS_STATUS;
    /// IRQL: <= DISPATCH_LEVEL.
    pub fn NdisCompleteUnbindAdapterEx(unbind_context: NDIS_HANDLE);
    /// IRQL: PASSIVE_LEVEL.
    pub fn NdisCompleteNetPnPEvent(
        ndis_binding_handle: NDIS_HANDLE,
        net_pnp_event_notification: *mut NET_PNP_EVENT_NOTIFICATION,
        status: NDIS_STATUS,
    );
    /// IRQL: <= DISPATCH_LEVEL.
    pub fn NdisOidRequest(ndis_binding_handle: NDIS_HANDLE, oid_request: *mut NDIS_OID_REQUEST) -> NDIS_STATUS;
    /// IRQL: <= DISPATCH_LEVEL.
    pub fn NdisCancelOidRequest(ndis_binding_handle: NDIS_HANDLE, request_id: PVOID);
    /// IRQL: <= DISPATCH_LEVEL.
    pub fn NdisSendNetBufferLists(
        ndis_binding_handle: NDIS_HANDLE,
        net_buffer_lists: *mut NET_BUFFER_LIST,
        port_number: NDIS_PORT_NUMBER,
        send_flags: u32,
    );
    /// IRQL: <= DISPATCH_LEVEL.
    pub fn NdisReturnNetBufferLists(
        ndis_binding_handle: NDIS_HANDLE,
        net_buffer_lists: *mut NET_BUFFER_LIST,
        return_flags: u32,
    );
    /// IRQL: <= DISPATCH_LEVEL.
    pub fn NdisAllocateNetBufferListPool(
        ndis_handle: NDIS_HANDLE,
        parameters: *mut NET_BUFFER_LIST_POOL_PARAMETERS,
    ) -> NDIS_HANDLE;
    /// IRQL: <= DISPATCH_LEVEL.
    pub fn NdisFreeNetBufferListPool(pool_handle: NDIS_HANDLE);
    /// IRQL: <= DISPATCH_LEVEL.
    pub fn NdisAllocateNetBufferAndNetBufferList(
        pool_handle: NDIS_HANDLE,
        context_size: u16,
        context_backfill: u16,
        mdl_chain: *mut MDL,
        data_offset: u32,
        data_length: SIZE_T,
    ) -> *mut NET_BUFFER_LIST;
    /// IRQL: <= DISPATCH_LEVEL.
    pub fn NdisFreeNetBufferList(net_buffer_list: *mut NET_BUFFER_LIST);
    /// IRQL: <= DISPATCH_LEVEL. An NBL with no NET_BUFFER when the pool
    /// was made without `fAllocateNetBuffer`.
    pub fn NdisAllocateNetBufferList(pool_handle: NDIS_HANDLE, context_size: u16, context_backfill: u16)
    -> *mut NET_BUFFER_LIST;
    /// IRQL: <= DISPATCH_LEVEL.
    pub fn NdisAllocateNetBufferPool(
        ndis_handle: NDIS_HANDLE,
        parameters: *mut NET_BUFFER_POOL_PARAMETERS,
    ) -> NDIS_HANDLE;
    /// IRQL: <= DISPATCH_LEVEL.
    pub fn NdisFreeNetBufferPool(pool_handle: NDIS_HANDLE);
    /// IRQL: <= DISPATCH_LEVEL.
    pub fn NdisAllocateNetBuffer(
        pool_handle: NDIS_HANDLE,
        mdl_chain: *mut MDL,
        data_offset: u32,
        data_length: SIZE_T,
    ) -> *mut NET_BUFFER;
    /// IRQL: <= DISPATCH_LEVEL.
    pub fn NdisFreeNetBuffer(net_buffer: *mut NET_BUFFER);
    /// IRQL: <= DISPATCH_LEVEL.
    pub fn NdisAllocateMdl(ndis_handle: NDIS_HANDLE, virtual_address: PVOID, length: u32) -> *mut MDL;
    /// IRQL: <= DISPATCH_LEVEL.
    pub fn NdisFreeMdl(mdl: *mut MDL);
    /// IRQL: any.
    pub fn NdisAllocateSpinLock(spin_lock: *mut NDIS_SPIN_LOCK);
    /// IRQL: any.
    pub fn NdisFreeSpinLock(spin_lock: *mut NDIS_SPIN_LOCK);
    /// IRQL: <= DISPATCH_LEVEL (raises to DISPATCH_LEVEL).
    pub fn NdisAcquireSpinLock(spin_lock: *mut NDIS_SPIN_LOCK);
    /// IRQL: DISPATCH_LEVEL.
    pub fn NdisReleaseSpinLock(spin_lock: *mut NDIS_SPIN_LOCK);
    /// IRQL: DISPATCH_LEVEL.
    pub fn NdisDprAcquireSpinLock(spin_lock: *mut NDIS_SPIN_LOCK);
    /// IRQL: DISPATCH_LEVEL.
    pub fn NdisDprReleaseSpinLock(spin_lock: *mut NDIS_SPIN_LOCK);
    /// IRQL: <= DISPATCH_LEVEL.
    pub fn NdisAllocateRWLock(ndis_handle: NDIS_HANDLE) -> *mut NDIS_RW_LOCK_EX;
    /// IRQL: <= DISPATCH_LEVEL.
    pub fn NdisFreeRWLock(lock: *mut NDIS_RW_LOCK_EX);
    /// IRQL: <= DISPATCH_LEVEL (raises to DISPATCH_LEVEL).
    pub fn NdisAcquireRWLockRead(lock: *mut NDIS_RW_LOCK_EX, lock_state: *mut LOCK_STATE_EX, flags: u8);
    /// IRQL: <= DISPATCH_LEVEL (raises to DISPATCH_LEVEL).
    pub fn NdisAcquireRWLockWrite(lock: *mut NDIS_RW_LOCK_EX, lock_state: *mut LOCK_STATE_EX, flags: u8);
    /// IRQL: DISPATCH_LEVEL.
    pub fn NdisReleaseRWLock(lock: *mut NDIS_RW_LOCK_EX, lock_state: *mut LOCK_STATE_EX);
}

imports! {
    ntoskrnl_imports, "ntoskrnl.exe";
    /// IRQL: <= DISPATCH_LEVEL (non-paged pool).
    pub fn ExAllocatePoolWithTag(pool_type: POOL_TYPE, number_of_bytes: SIZE_T, tag: u32) -> PVOID;
    /// IRQL: <= DISPATCH_LEVEL (non-paged pool).
    pub fn ExFreePoolWithTag(p: PVOID, tag: u32);
    /// IRQL: any.
    pub fn KeBugCheckEx(code: u32, p1: ULONG_PTR, p2: ULONG_PTR, p3: ULONG_PTR, p4: ULONG_PTR) -> !;
    /// IRQL: any (Windows 8+).
    pub fn KeQuerySystemTimePrecise(current_time: *mut LARGE_INTEGER);
    /// IRQL: <= APC_LEVEL. `interval`: negative, relative, in 100 ns
    /// units; positive, an absolute system time.
    pub fn KeDelayExecutionThread(
        wait_mode: KPROCESSOR_MODE,
        alertable: BOOLEAN,
        interval: *mut LARGE_INTEGER,
    ) -> NTSTATUS;
    /// IRQL: <= APC_LEVEL.
    pub fn IoCreateDevice(
        driver_object: *mut DRIVER_OBJECT,
        device_extension_size: u32,
        device_name: *mut UNICODE_STRING,
        device_type: DEVICE_TYPE,
        device_characteristics: u32,
        exclusive: BOOLEAN,
        device_object: *mut *mut DEVICE_OBJECT,
    ) -> NTSTATUS;
    /// IRQL: <= APC_LEVEL.
    pub fn IoDeleteDevice(device_object: *mut DEVICE_OBJECT);
    /// IRQL: PASSIVE_LEVEL.
    pub fn IoCreateSymbolicLink(symbolic_link_name: *mut UNICODE_STRING, device_name: *mut UNICODE_STRING) -> NTSTATUS;
    /// IRQL: PASSIVE_LEVEL.
    pub fn IoDeleteSymbolicLink(symbolic_link_name: *mut UNICODE_STRING) -> NTSTATUS;
    /// `IoCompleteRequest` is a macro over this export.
    /// IRQL: <= DISPATCH_LEVEL.
    pub fn IofCompleteRequest(irp: *mut IRP, priority_boost: CCHAR);
    /// IRQL: <= DISPATCH_LEVEL.
    pub fn IoAllocateWorkItem(device_object: *mut DEVICE_OBJECT) -> *mut IO_WORKITEM;
    /// IRQL: <= DISPATCH_LEVEL.
    pub fn IoQueueWorkItem(
        io_work_item: *mut IO_WORKITEM,
        worker_routine: IO_WORKITEM_ROUTINE,
        queue_type: u32,
        context: PVOID,
    );
    /// IRQL: <= DISPATCH_LEVEL.
    pub fn IoFreeWorkItem(io_work_item: *mut IO_WORKITEM);
    /// IRQL: <= DISPATCH_LEVEL (raises to DISPATCH_LEVEL).
    pub fn IoAcquireCancelSpinLock(irql: *mut KIRQL);
    /// IRQL: DISPATCH_LEVEL.
    pub fn IoReleaseCancelSpinLock(irql: KIRQL);
    /// IRQL: <= DISPATCH_LEVEL (KernelMode).
    pub fn MmMapLockedPagesSpecifyCache(
        mdl: *mut MDL,
        access_mode: KPROCESSOR_MODE,
        cache_type: u32,
        requested_address: PVOID,
        bug_check_on_failure: u32,
        priority: u32,
    ) -> PVOID;
    /// IRQL: <= DISPATCH_LEVEL. An MDL for `length` bytes at
    /// `virtual_address` (not filled in: `IoBuildPartialMdl` does that).
    pub fn IoAllocateMdl(
        virtual_address: PVOID,
        length: u32,
        secondary_buffer: BOOLEAN,
        charge_quota: BOOLEAN,
        irp: *mut IRP,
    ) -> *mut MDL;
    /// IRQL: <= DISPATCH_LEVEL. Makes `target` describe `length` bytes at
    /// `virtual_address` inside `source`'s (locked) pages.
    pub fn IoBuildPartialMdl(source_mdl: *mut MDL, target_mdl: *mut MDL, virtual_address: PVOID, length: u32);
    /// IRQL: <= DISPATCH_LEVEL.
    pub fn IoFreeMdl(mdl: *mut MDL);
    /// IRQL: <= DISPATCH_LEVEL (KernelMode). `MmPrepareMdlForReuse`, a
    /// macro, calls it for a partial MDL that was mapped on its own.
    pub fn MmUnmapLockedPages(base_address: PVOID, mdl: *mut MDL);
    /// IRQL: <= APC_LEVEL (<= DISPATCH_LEVEL for non-paged memory). Raises
    /// an exception on an invalid user address, which Rust cannot catch:
    /// rawnic does not call it (the I/O manager locks `METHOD_*_DIRECT`
    /// buffers), but ndisim emulates it for fixtures.
    pub fn MmProbeAndLockPages(mdl: *mut MDL, access_mode: KPROCESSOR_MODE, operation: u32);
    /// IRQL: <= DISPATCH_LEVEL.
    pub fn MmUnlockPages(mdl: *mut MDL);
    /// IRQL: <= APC_LEVEL.
    pub fn ObOpenObjectByPointer(
        object: PVOID,
        handle_attributes: u32,
        passed_access_state: PVOID,
        desired_access: ACCESS_MASK,
        object_type: PVOID,
        access_mode: KPROCESSOR_MODE,
        handle: *mut HANDLE,
    ) -> NTSTATUS;
    /// IRQL: PASSIVE_LEVEL.
    pub fn ZwSetSecurityObject(
        handle: HANDLE,
        security_information: SECURITY_INFORMATION,
        security_descriptor: PSECURITY_DESCRIPTOR,
    ) -> NTSTATUS;
    /// IRQL: PASSIVE_LEVEL.
    pub fn ZwClose(handle: HANDLE) -> NTSTATUS;
    /// Whether the token holds the local Administrators group (enabled;
    /// SYSTEM's token does). IRQL: PASSIVE_LEVEL.
    pub fn SeTokenIsAdmin(token: PVOID) -> BOOLEAN;
    /// IRQL: PASSIVE_LEVEL.
    pub fn RtlCreateSecurityDescriptor(security_descriptor: PSECURITY_DESCRIPTOR, revision: u32) -> NTSTATUS;
    /// IRQL: <= APC_LEVEL.
    pub fn RtlCreateAcl(acl: *mut ACL, acl_length: u32, acl_revision: u32) -> NTSTATUS;
    /// IRQL: <= APC_LEVEL.
    pub fn RtlAddAccessAllowedAce(acl: *mut ACL, ace_revision: u32, access_mask: ACCESS_MASK, sid: PSID) -> NTSTATUS;
    /// IRQL: PASSIVE_LEVEL.
    pub fn RtlSetDaclSecurityDescriptor(
        security_descriptor: PSECURITY_DESCRIPTOR,
        dacl_present: BOOLEAN,
        dacl: *mut ACL,
        dacl_defaulted: BOOLEAN,
    ) -> NTSTATUS;
}

imports! {
    hal_imports, "HAL.dll";
    /// IRQL: any.
    pub fn KeQueryPerformanceCounter(performance_frequency: *mut LARGE_INTEGER) -> i64;
}

#[cfg(windows)]
#[link(name = "ntoskrnl.exe", kind = "raw-dylib", modifiers = "+verbatim")]
unsafe extern "C" {
    /// `DbgPrintEx(ComponentId, Level, Format, ...)`.
    pub fn DbgPrintEx(component_id: u32, level: u32, format: *const u8, ...) -> u32;
}

/// Names of the variadic imports, which have no pointer type.
pub const VARIADIC: &[(&str, &str)] = &[("ntoskrnl.exe", "DbgPrintEx")];

/// Every imported module with the names imported from it.
pub const ALL: &[(&str, &[&str])] = &[
    (ndis_imports::DLL, ndis_imports::NAMES),
    (ntoskrnl_imports::DLL, ntoskrnl_imports::NAMES),
    (hal_imports::DLL, hal_imports::NAMES),
];
