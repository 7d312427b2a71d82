//! WDM (kernel and I/O manager) structures, as the x64 kernel lays them out.
//!
//! Members that C declares inside anonymous unions or structs are reached
//! through fields named `anon*`.

use crate::layout::ffi_types;
use crate::types::*;

/// `DRIVER_DISPATCH`: an IRP major-function routine.
pub type DRIVER_DISPATCH = Option<unsafe extern "win64" fn(device: *mut DEVICE_OBJECT, irp: *mut IRP) -> NTSTATUS>;
/// `DRIVER_UNLOAD`.
pub type DRIVER_UNLOAD = Option<unsafe extern "win64" fn(driver: *mut DRIVER_OBJECT)>;
/// `DRIVER_CANCEL`: an IRP cancel routine; called with the cancel spin lock held.
pub type DRIVER_CANCEL = Option<unsafe extern "win64" fn(device: *mut DEVICE_OBJECT, irp: *mut IRP)>;
/// `IO_COMPLETION_ROUTINE`.
pub type IO_COMPLETION_ROUTINE =
    Option<unsafe extern "win64" fn(device: *mut DEVICE_OBJECT, irp: *mut IRP, context: PVOID) -> NTSTATUS>;
/// `WORKER_THREAD_ROUTINE`.
pub type WORKER_THREAD_ROUTINE = Option<unsafe extern "win64" fn(parameter: PVOID)>;
/// `DRIVER_INITIALIZE`: the signature of `DriverEntry`.
pub type DRIVER_INITIALIZE =
    Option<unsafe extern "win64" fn(driver: *mut DRIVER_OBJECT, registry_path: *mut UNICODE_STRING) -> NTSTATUS>;

/// `IO_WORKITEM_ROUTINE`: runs at PASSIVE_LEVEL in a system worker thread.
pub type IO_WORKITEM_ROUTINE = Option<unsafe extern "win64" fn(device: *mut DEVICE_OBJECT, context: PVOID)>;

/// `IO_WORKITEM`: opaque; `IoAllocateWorkItem` allocates it.
#[repr(C)]
pub struct IO_WORKITEM {
    _opaque: [u8; 0],
}

/// Number of IRP major function codes (`IRP_MJ_MAXIMUM_FUNCTION + 1`).
pub const IRP_MJ_COUNT: usize = 28;

ffi_types! {
    const WDM_TYPES;

    /// `GUID`.
    #[repr(C)]
    pub struct GUID {
        pub Data1: u32,
        pub Data2: u16,
        pub Data3: u16,
        pub Data4: [u8; 8],
    }

    /// `UNICODE_STRING`; `NDIS_STRING` is the same type. Lengths are in bytes.
    #[repr(C)]
    pub struct UNICODE_STRING {
        pub Length: u16,
        pub MaximumLength: u16,
        pub Buffer: *mut WCHAR,
    }

    /// `LIST_ENTRY`.
    #[repr(C)]
    pub struct LIST_ENTRY {
        pub Flink: *mut LIST_ENTRY,
        pub Blink: *mut LIST_ENTRY,
    }

    /// `SLIST_HEADER` (x64: 16 bytes, 16-byte aligned).
    #[repr(C, align(16))]
    pub struct SLIST_HEADER {
        pub Alignment: u64,
        pub Region: u64,
    }

    /// The anonymous `{ LowPart; HighPart; }` of `LARGE_INTEGER`.
    #[repr(C)]
    pub struct LARGE_INTEGER_PARTS {
        pub LowPart: u32,
        pub HighPart: i32,
    }

    /// `LARGE_INTEGER`.
    #[repr(C)]
    pub union LARGE_INTEGER {
        pub anon: LARGE_INTEGER_PARTS,
        pub QuadPart: i64,
    }

    /// The anonymous `{ Type; Signalling; Size; Reserved1; }` of `DISPATCHER_HEADER`.
    #[repr(C)]
    pub struct DISPATCHER_HEADER_TYPE {
        pub Type: u8,
        pub Signalling: u8,
        pub Size: u8,
        pub Reserved1: u8,
    }

    /// The first anonymous union of `DISPATCHER_HEADER`.
    #[repr(C)]
    pub union DISPATCHER_HEADER_LOCK {
        pub Lock: i32,
        pub anon: DISPATCHER_HEADER_TYPE,
    }

    /// `DISPATCHER_HEADER`, the common head of waitable kernel objects.
    #[repr(C)]
    pub struct DISPATCHER_HEADER {
        pub anon: DISPATCHER_HEADER_LOCK,
        pub SignalState: i32,
        pub WaitListHead: LIST_ENTRY,
    }

    /// `KEVENT`.
    #[repr(C)]
    pub struct KEVENT {
        pub Header: DISPATCHER_HEADER,
    }

    /// `KDPC`: opaque here; the driver never touches its members.
    #[repr(C)]
    pub struct KDPC {
        pub Opaque: [u64; 8],
    }

    /// `KAPC`: opaque here.
    #[repr(C)]
    pub struct KAPC {
        pub Opaque: [u64; 11],
    }

    /// `WAIT_CONTEXT_BLOCK`: opaque here.
    #[repr(C)]
    pub struct WAIT_CONTEXT_BLOCK {
        pub Opaque: [u64; 9],
    }

    /// `KDEVICE_QUEUE_ENTRY`.
    #[repr(C)]
    pub struct KDEVICE_QUEUE_ENTRY {
        pub DeviceListEntry: LIST_ENTRY,
        pub SortKey: u32,
        pub Inserted: BOOLEAN,
    }

    /// The anonymous union at the end of `KDEVICE_QUEUE`: `Busy`, or the
    /// 64-bit `Reserved:8, Hint:56` bitfield.
    #[repr(C)]
    pub union KDEVICE_QUEUE_BUSY {
        pub Busy: BOOLEAN,
        pub Bits: i64,
    }

    /// `KDEVICE_QUEUE`.
    #[repr(C)]
    pub struct KDEVICE_QUEUE {
        pub Type: CSHORT,
        pub Size: CSHORT,
        pub DeviceListHead: LIST_ENTRY,
        pub Lock: KSPIN_LOCK,
        pub anon: KDEVICE_QUEUE_BUSY,
    }

    /// `WORK_QUEUE_ITEM`.
    #[repr(C)]
    pub struct WORK_QUEUE_ITEM {
        pub List: LIST_ENTRY,
        pub WorkerRoutine: WORKER_THREAD_ROUTINE,
        pub Parameter: PVOID,
    }

    /// `MDL`: describes the physical pages of a virtually contiguous buffer.
    /// The page-frame array follows the structure in memory.
    #[repr(C)]
    pub struct MDL {
        pub Next: *mut MDL,
        pub Size: CSHORT,
        pub MdlFlags: CSHORT,
        pub AllocationProcessorNumber: u16,
        pub Reserved: u16,
        pub Process: PVOID,
        pub MappedSystemVa: PVOID,
        pub StartVa: PVOID,
        pub ByteCount: u32,
        pub ByteOffset: u32,
    }

    /// The anonymous `{ Status; Pointer; }` union of `IO_STATUS_BLOCK`.
    #[repr(C)]
    pub union IO_STATUS_BLOCK_STATUS {
        pub Status: NTSTATUS,
        pub Pointer: PVOID,
    }

    /// `IO_STATUS_BLOCK`.
    #[repr(C)]
    pub struct IO_STATUS_BLOCK {
        pub anon: IO_STATUS_BLOCK_STATUS,
        pub Information: ULONG_PTR,
    }

    /// `DEVICE_OBJECT::Queue`.
    #[repr(C)]
    pub union DEVICE_OBJECT_QUEUE {
        pub ListEntry: LIST_ENTRY,
        pub Wcb: WAIT_CONTEXT_BLOCK,
    }

    /// `DEVICE_OBJECT` (declared with 16-byte alignment in wdm.h).
    #[repr(C, align(16))]
    pub struct DEVICE_OBJECT {
        pub Type: CSHORT,
        pub Size: u16,
        pub ReferenceCount: i32,
        pub DriverObject: *mut DRIVER_OBJECT,
        pub NextDevice: *mut DEVICE_OBJECT,
        pub AttachedDevice: *mut DEVICE_OBJECT,
        pub CurrentIrp: *mut IRP,
        pub Timer: PVOID,
        pub Flags: u32,
        pub Characteristics: u32,
        pub Vpb: PVOID,
        pub DeviceExtension: PVOID,
        pub DeviceType: DEVICE_TYPE,
        pub StackSize: CCHAR,
        pub Queue: DEVICE_OBJECT_QUEUE,
        pub AlignmentRequirement: u32,
        pub DeviceQueue: KDEVICE_QUEUE,
        pub Dpc: KDPC,
        pub ActiveThreadCount: u32,
        pub SecurityDescriptor: PSECURITY_DESCRIPTOR,
        pub DeviceLock: KEVENT,
        pub SectorSize: u16,
        pub Spare1: u16,
        pub DeviceObjectExtension: PVOID,
        pub Reserved: PVOID,
    }

    /// `DRIVER_OBJECT`.
    #[repr(C)]
    pub struct DRIVER_OBJECT {
        pub Type: CSHORT,
        pub Size: CSHORT,
        pub DeviceObject: *mut DEVICE_OBJECT,
        pub Flags: u32,
        pub DriverStart: PVOID,
        pub DriverSize: u32,
        pub DriverSection: PVOID,
        pub DriverExtension: *mut DRIVER_EXTENSION,
        pub DriverName: UNICODE_STRING,
        pub HardwareDatabase: *mut UNICODE_STRING,
        pub FastIoDispatch: PVOID,
        pub DriverInit: DRIVER_INITIALIZE,
        pub DriverStartIo: PVOID,
        pub DriverUnload: DRIVER_UNLOAD,
        pub MajorFunction: [DRIVER_DISPATCH; IRP_MJ_COUNT],
    }

    /// `DRIVER_EXTENSION`.
    #[repr(C)]
    pub struct DRIVER_EXTENSION {
        pub DriverObject: *mut DRIVER_OBJECT,
        pub AddDevice: PVOID,
        pub Count: u32,
        pub ServiceKeyName: UNICODE_STRING,
    }

    /// `FILE_OBJECT`.
    #[repr(C)]
    pub struct FILE_OBJECT {
        pub Type: CSHORT,
        pub Size: CSHORT,
        pub DeviceObject: *mut DEVICE_OBJECT,
        pub Vpb: PVOID,
        pub FsContext: PVOID,
        pub FsContext2: PVOID,
        pub SectionObjectPointer: PVOID,
        pub PrivateCacheMap: PVOID,
        pub FinalStatus: NTSTATUS,
        pub RelatedFileObject: *mut FILE_OBJECT,
        pub LockOperation: BOOLEAN,
        pub DeletePending: BOOLEAN,
        pub ReadAccess: BOOLEAN,
        pub WriteAccess: BOOLEAN,
        pub DeleteAccess: BOOLEAN,
        pub SharedRead: BOOLEAN,
        pub SharedWrite: BOOLEAN,
        pub SharedDelete: BOOLEAN,
        pub Flags: u32,
        pub FileName: UNICODE_STRING,
        pub CurrentByteOffset: LARGE_INTEGER,
        pub Waiters: u32,
        pub Busy: u32,
        pub LastLock: PVOID,
        pub Lock: KEVENT,
        pub Event: KEVENT,
        pub CompletionContext: PVOID,
        pub IrpListLock: KSPIN_LOCK,
        pub IrpList: LIST_ENTRY,
        pub FileObjectExtension: PVOID,
    }

    /// `IRP::AssociatedIrp`.
    #[repr(C)]
    pub union IRP_ASSOCIATED {
        pub MasterIrp: *mut IRP,
        pub IrpCount: i32,
        pub SystemBuffer: PVOID,
    }

    /// The anonymous `{ UserApcRoutine; IssuingProcess; }` union.
    #[repr(C)]
    pub union IRP_APC_ROUTINE {
        pub UserApcRoutine: PVOID,
        pub IssuingProcess: PVOID,
    }

    /// `IRP::Overlay.AsynchronousParameters`.
    #[repr(C)]
    pub struct IRP_ASYNC_PARAMETERS {
        pub anon: IRP_APC_ROUTINE,
        pub UserApcContext: PVOID,
    }

    /// `IRP::Overlay`.
    #[repr(C)]
    pub union IRP_OVERLAY {
        pub AsynchronousParameters: IRP_ASYNC_PARAMETERS,
        pub AllocationSize: LARGE_INTEGER,
    }

    /// The anonymous `{ DeviceQueueEntry; DriverContext[4]; }` union.
    #[repr(C)]
    pub union IRP_TAIL_QUEUE {
        pub DeviceQueueEntry: KDEVICE_QUEUE_ENTRY,
        pub DriverContext: [PVOID; 4],
    }

    /// The anonymous `{ CurrentStackLocation; PacketType; }` union.
    #[repr(C)]
    pub union IRP_TAIL_STACK {
        pub CurrentStackLocation: *mut IO_STACK_LOCATION,
        pub PacketType: u32,
    }

    /// `IRP::Tail.Overlay`.
    #[repr(C)]
    pub struct IRP_TAIL_OVERLAY {
        pub anon: IRP_TAIL_QUEUE,
        pub Thread: PVOID,
        pub AuxiliaryBuffer: *mut i8,
        pub ListEntry: LIST_ENTRY,
        pub anon2: IRP_TAIL_STACK,
        pub OriginalFileObject: *mut FILE_OBJECT,
        pub IrpExtension: PVOID,
    }

    /// `IRP::Tail`.
    #[repr(C)]
    pub union IRP_TAIL {
        pub Overlay: IRP_TAIL_OVERLAY,
        pub Apc: KAPC,
        pub CompletionKey: PVOID,
    }

    /// `IRP`. Its `IO_STACK_LOCATION`s follow it in memory.
    #[repr(C)]
    pub struct IRP {
        pub Type: CSHORT,
        pub Size: u16,
        pub AllocationProcessorNumber: u16,
        pub Reserved: u16,
        pub MdlAddress: *mut MDL,
        pub Flags: u32,
        pub AssociatedIrp: IRP_ASSOCIATED,
        pub ThreadListEntry: LIST_ENTRY,
        pub IoStatus: IO_STATUS_BLOCK,
        pub RequestorMode: KPROCESSOR_MODE,
        pub PendingReturned: BOOLEAN,
        pub StackCount: CCHAR,
        pub CurrentLocation: CCHAR,
        pub Cancel: BOOLEAN,
        pub CancelIrql: KIRQL,
        pub ApcEnvironment: CCHAR,
        pub AllocationFlags: u8,
        pub UserIosb: *mut IO_STATUS_BLOCK,
        pub UserEvent: *mut KEVENT,
        pub Overlay: IRP_OVERLAY,
        pub CancelRoutine: DRIVER_CANCEL,
        pub UserBuffer: PVOID,
        pub Tail: IRP_TAIL,
    }

    /// `IO_STACK_LOCATION::Parameters.Create`.
    #[repr(C)]
    pub struct IO_PARAMS_CREATE {
        pub SecurityContext: *mut IO_SECURITY_CONTEXT,
        pub Options: u32,
        pub _pad0: u32,
        pub FileAttributes: u16,
        pub ShareAccess: u16,
        pub _pad1: u32,
        pub EaLength: u32,
        pub _pad2: u32,
    }

    /// `Parameters.Read` and `Parameters.Write` (same layout).
    #[repr(C)]
    pub struct IO_PARAMS_READ_WRITE {
        pub Length: u32,
        pub _pad0: u32,
        pub Key: u32,
        pub Flags: u32,
        pub ByteOffset: LARGE_INTEGER,
    }

    /// `Parameters.DeviceIoControl` and `Parameters.FileSystemControl`
    /// (same layout; the third member is `IoControlCode` or `FsControlCode`).
    #[repr(C)]
    pub struct IO_PARAMS_DEVICE_IO_CONTROL {
        pub OutputBufferLength: u32,
        pub _pad0: u32,
        pub InputBufferLength: u32,
        pub _pad1: u32,
        pub IoControlCode: u32,
        pub _pad2: u32,
        pub Type3InputBuffer: PVOID,
    }

    /// `Parameters.FileSystemControl`.
    #[repr(C)]
    pub struct IO_PARAMS_FILE_SYSTEM_CONTROL {
        pub OutputBufferLength: u32,
        pub _pad0: u32,
        pub InputBufferLength: u32,
        pub _pad1: u32,
        pub FsControlCode: u32,
        pub _pad2: u32,
        pub Type3InputBuffer: PVOID,
    }

    /// `Parameters.QueryInterface`.
    #[repr(C)]
    pub struct IO_PARAMS_QUERY_INTERFACE {
        pub InterfaceType: *const GUID,
        pub Size: u16,
        pub Version: u16,
        pub _pad0: u32,
        pub Interface: PVOID,
        pub InterfaceSpecificData: PVOID,
    }

    /// `Parameters.Power`.
    #[repr(C)]
    pub struct IO_PARAMS_POWER {
        pub SystemContext: u32,
        pub _pad0: u32,
        pub Type: u32,
        pub _pad1: u32,
        pub State: u32,
        pub _pad2: u32,
        pub ShutdownType: u32,
        pub _pad3: u32,
    }

    /// `Parameters.Others`.
    #[repr(C)]
    pub struct IO_PARAMS_OTHERS {
        pub Argument1: PVOID,
        pub Argument2: PVOID,
        pub Argument3: PVOID,
        pub Argument4: PVOID,
    }

    /// `IO_STACK_LOCATION::Parameters` (only the members rawnic needs and
    /// the layout table lists).
    #[repr(C)]
    pub union IO_STACK_PARAMETERS {
        pub Create: IO_PARAMS_CREATE,
        pub Read: IO_PARAMS_READ_WRITE,
        pub Write: IO_PARAMS_READ_WRITE,
        pub DeviceIoControl: IO_PARAMS_DEVICE_IO_CONTROL,
        pub FileSystemControl: IO_PARAMS_FILE_SYSTEM_CONTROL,
        pub QueryInterface: IO_PARAMS_QUERY_INTERFACE,
        pub Power: IO_PARAMS_POWER,
        pub Others: IO_PARAMS_OTHERS,
    }

    /// `IO_STACK_LOCATION`.
    #[repr(C)]
    pub struct IO_STACK_LOCATION {
        pub MajorFunction: u8,
        pub MinorFunction: u8,
        pub Flags: u8,
        pub Control: u8,
        pub Parameters: IO_STACK_PARAMETERS,
        pub DeviceObject: *mut DEVICE_OBJECT,
        pub FileObject: *mut FILE_OBJECT,
        pub CompletionRoutine: IO_COMPLETION_ROUTINE,
        pub Context: PVOID,
    }

    /// `ACL` header.
    #[repr(C)]
    pub struct ACL {
        pub AclRevision: u8,
        pub Sbz1: u8,
        pub AclSize: u16,
        pub AceCount: u16,
        pub Sbz2: u16,
    }

    /// `LUID`.
    #[repr(C)]
    pub struct LUID {
        pub LowPart: u32,
        pub HighPart: i32,
    }

    /// `IO_SECURITY_CONTEXT`: what `Parameters.Create.SecurityContext` of an
    /// IRP_MJ_CREATE points to.
    #[repr(C)]
    pub struct IO_SECURITY_CONTEXT {
        pub SecurityQos: PVOID,
        pub AccessState: *mut ACCESS_STATE,
        pub DesiredAccess: ACCESS_MASK,
        pub FullCreateOptions: u32,
    }

    /// `SECURITY_SUBJECT_CONTEXT`: the tokens of the thread that opens.
    #[repr(C)]
    pub struct SECURITY_SUBJECT_CONTEXT {
        /// The impersonation token, or null.
        pub ClientToken: PVOID,
        pub ImpersonationLevel: u32,
        /// The process's token.
        pub PrimaryToken: PVOID,
        pub ProcessAuditId: PVOID,
    }

    /// `ACCESS_STATE`, up to and including `SubjectSecurityContext` (the
    /// part rawnic reads; the rest follows it in the real structure, which
    /// the I/O manager allocates).
    #[repr(C)]
    pub struct ACCESS_STATE {
        pub OperationID: LUID,
        pub SecurityEvaluated: BOOLEAN,
        pub GenerateAudit: BOOLEAN,
        pub GenerateOnClose: BOOLEAN,
        pub PrivilegesAllocated: BOOLEAN,
        pub Flags: u32,
        pub RemainingDesiredAccess: ACCESS_MASK,
        pub PreviouslyGrantedAccess: ACCESS_MASK,
        pub OriginalDesiredAccess: ACCESS_MASK,
        pub SubjectSecurityContext: SECURITY_SUBJECT_CONTEXT,
    }

    /// `SECURITY_DESCRIPTOR` in absolute format.
    #[repr(C)]
    pub struct SECURITY_DESCRIPTOR {
        pub Revision: u8,
        pub Sbz1: u8,
        pub Control: u16,
        pub Owner: PSID,
        pub Group: PSID,
        pub Sacl: *mut ACL,
        pub Dacl: *mut ACL,
    }

    /// `OBJECT_ATTRIBUTES`.
    #[repr(C)]
    pub struct OBJECT_ATTRIBUTES {
        pub Length: u32,
        pub RootDirectory: HANDLE,
        pub ObjectName: *mut UNICODE_STRING,
        pub Attributes: u32,
        pub SecurityDescriptor: PVOID,
        pub SecurityQualityOfService: PVOID,
    }
}
