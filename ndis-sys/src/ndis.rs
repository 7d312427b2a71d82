//! NDIS 6 structures and protocol-driver callback types.

use crate::layout::ffi_types;
use crate::types::*;
use crate::wdm::*;

/// Number of `NetBufferListInfo` slots in the x64 `NET_BUFFER_LIST` this
/// crate declares. Only the documented info types (below 26) may be indexed.
pub const MAX_NET_BUFFER_LIST_INFO: usize = 29;

// ---------------------------------------------------------------------------
// Protocol driver callbacks (ndis.h `PROTOCOL_*`).
// ---------------------------------------------------------------------------

pub type SET_OPTIONS_HANDLER =
    Option<unsafe extern "win64" fn(driver_handle: NDIS_HANDLE, driver_context: NDIS_HANDLE) -> NDIS_STATUS>;
pub type PROTOCOL_BIND_ADAPTER_EX = Option<
    unsafe extern "win64" fn(
        protocol_driver_context: NDIS_HANDLE,
        bind_context: NDIS_HANDLE,
        bind_parameters: *mut NDIS_BIND_PARAMETERS,
    ) -> NDIS_STATUS,
>;
pub type PROTOCOL_UNBIND_ADAPTER_EX =
    Option<unsafe extern "win64" fn(unbind_context: NDIS_HANDLE, protocol_binding_context: NDIS_HANDLE) -> NDIS_STATUS>;
pub type PROTOCOL_OPEN_ADAPTER_COMPLETE_EX =
    Option<unsafe extern "win64" fn(protocol_binding_context: NDIS_HANDLE, status: NDIS_STATUS)>;
pub type PROTOCOL_CLOSE_ADAPTER_COMPLETE_EX = Option<unsafe extern "win64" fn(protocol_binding_context: NDIS_HANDLE)>;
pub type PROTOCOL_NET_PNP_EVENT = Option<
    unsafe extern "win64" fn(
        protocol_binding_context: NDIS_HANDLE,
        net_pnp_event_notification: *mut NET_PNP_EVENT_NOTIFICATION,
    ) -> NDIS_STATUS,
>;
pub type PROTOCOL_UNINSTALL = Option<unsafe extern "win64" fn()>;
pub type PROTOCOL_OID_REQUEST_COMPLETE = Option<
    unsafe extern "win64" fn(
        protocol_binding_context: NDIS_HANDLE,
        oid_request: *mut NDIS_OID_REQUEST,
        status: NDIS_STATUS,
    ),
>;
pub type PROTOCOL_STATUS_EX = Option<
    unsafe extern "win64" fn(protocol_binding_context: NDIS_HANDLE, status_indication: *mut NDIS_STATUS_INDICATION),
>;
pub type PROTOCOL_RECEIVE_NET_BUFFER_LISTS = Option<
    unsafe extern "win64" fn(
        protocol_binding_context: NDIS_HANDLE,
        net_buffer_lists: *mut NET_BUFFER_LIST,
        port_number: NDIS_PORT_NUMBER,
        number_of_net_buffer_lists: u32,
        receive_flags: u32,
    ),
>;
pub type PROTOCOL_SEND_NET_BUFFER_LISTS_COMPLETE = Option<
    unsafe extern "win64" fn(
        protocol_binding_context: NDIS_HANDLE,
        net_buffer_list: *mut NET_BUFFER_LIST,
        send_complete_flags: u32,
    ),
>;
pub type PROTOCOL_DIRECT_OID_REQUEST_COMPLETE = PROTOCOL_OID_REQUEST_COMPLETE;

/// `NDIS_RW_LOCK_EX`: opaque; NDIS allocates it.
#[repr(C)]
pub struct NDIS_RW_LOCK_EX {
    _opaque: [u8; 0],
}

ffi_types! {
    const NDIS_TYPES;

    /// `NDIS_OBJECT_HEADER`: type, revision and size of a versioned NDIS structure.
    #[repr(C)]
    pub struct NDIS_OBJECT_HEADER {
        pub Type: u8,
        pub Revision: u8,
        pub Size: u16,
    }

    /// `NDIS_PROTOCOL_DRIVER_CHARACTERISTICS`.
    #[repr(C)]
    pub struct NDIS_PROTOCOL_DRIVER_CHARACTERISTICS {
        pub Header: NDIS_OBJECT_HEADER,
        pub MajorNdisVersion: u8,
        pub MinorNdisVersion: u8,
        pub MajorDriverVersion: u8,
        pub MinorDriverVersion: u8,
        pub Flags: u32,
        pub Name: UNICODE_STRING,
        pub SetOptionsHandler: SET_OPTIONS_HANDLER,
        pub BindAdapterHandlerEx: PROTOCOL_BIND_ADAPTER_EX,
        pub UnbindAdapterHandlerEx: PROTOCOL_UNBIND_ADAPTER_EX,
        pub OpenAdapterCompleteHandlerEx: PROTOCOL_OPEN_ADAPTER_COMPLETE_EX,
        pub CloseAdapterCompleteHandlerEx: PROTOCOL_CLOSE_ADAPTER_COMPLETE_EX,
        pub NetPnPEventHandler: PROTOCOL_NET_PNP_EVENT,
        pub UninstallHandler: PROTOCOL_UNINSTALL,
        pub OidRequestCompleteHandler: PROTOCOL_OID_REQUEST_COMPLETE,
        pub StatusHandlerEx: PROTOCOL_STATUS_EX,
        pub ReceiveNetBufferListsHandler: PROTOCOL_RECEIVE_NET_BUFFER_LISTS,
        pub SendNetBufferListsCompleteHandler: PROTOCOL_SEND_NET_BUFFER_LISTS_COMPLETE,
        pub DirectOidRequestCompleteHandler: PROTOCOL_DIRECT_OID_REQUEST_COMPLETE,
    }

    /// `NDIS_BIND_PARAMETERS`, passed to `ProtocolBindAdapterEx`.
    #[repr(C)]
    pub struct NDIS_BIND_PARAMETERS {
        pub Header: NDIS_OBJECT_HEADER,
        pub ProtocolSection: *mut UNICODE_STRING,
        pub AdapterName: *mut UNICODE_STRING,
        pub PhysicalDeviceObject: *mut DEVICE_OBJECT,
        pub MediaType: NDIS_MEDIUM,
        pub MtuSize: u32,
        pub MaxXmitLinkSpeed: u64,
        pub XmitLinkSpeed: u64,
        pub MaxRcvLinkSpeed: u64,
        pub RcvLinkSpeed: u64,
        pub MediaConnectState: NDIS_MEDIA_CONNECT_STATE,
        pub MediaDuplexState: NDIS_MEDIA_DUPLEX_STATE,
        pub LookaheadSize: u32,
        pub PowerManagementCapabilities: PVOID,
        pub SupportedPacketFilters: u32,
        pub MaxMulticastListSize: u32,
        pub MacAddressLength: u16,
        pub CurrentMacAddress: [u8; 32],
        pub PhysicalMediumType: NDIS_PHYSICAL_MEDIUM,
        pub RcvScaleCapabilities: PVOID,
        pub BoundIfNetluid: NET_LUID,
        pub BoundIfIndex: NET_IFINDEX,
        pub LowestIfNetluid: NET_LUID,
        pub LowestIfIndex: NET_IFINDEX,
        pub AccessType: NET_IF_ACCESS_TYPE,
        pub DirectionType: NET_IF_DIRECTION_TYPE,
        pub ConnectionType: NET_IF_CONNECTION_TYPE,
        pub IfType: NET_IFTYPE,
        pub IfConnectorPresent: BOOLEAN,
        pub ActivePorts: PVOID,
        pub DataBackFillSize: u32,
        pub ContextBackFillSize: u32,
        pub MacOptions: u32,
        pub CompartmentId: NET_IF_COMPARTMENT_ID,
        pub DefaultOffloadConfiguration: PVOID,
        pub TcpConnectionOffloadCapabilities: PVOID,
        pub BoundAdapterName: *mut UNICODE_STRING,
        pub HDSplitCurrentConfig: PVOID,
        pub ReceiveFilterCapabilities: PVOID,
        pub PowerManagementCapabilitiesEx: PVOID,
        pub NicSwitchCapabilities: PVOID,
        pub NDKEnabled: BOOLEAN,
        pub NDKCapabilities: PVOID,
        pub SriovCapabilities: PVOID,
        pub NicSwitchArray: PVOID,
    }

    /// `NDIS_OPEN_PARAMETERS`, passed to `NdisOpenAdapterEx`.
    #[repr(C)]
    pub struct NDIS_OPEN_PARAMETERS {
        pub Header: NDIS_OBJECT_HEADER,
        pub AdapterName: *mut UNICODE_STRING,
        pub MediumArray: *mut NDIS_MEDIUM,
        pub MediumArraySize: u32,
        pub SelectedMediumIndex: *mut u32,
        pub FrameTypeArray: *mut u16,
        pub FrameTypeArraySize: u32,
    }

    /// `NET_PNP_EVENT`.
    #[repr(C)]
    pub struct NET_PNP_EVENT {
        pub NetEvent: NET_PNP_EVENT_CODE,
        pub Buffer: PVOID,
        pub BufferLength: u32,
        pub NdisReserved: [ULONG_PTR; 4],
        pub TransportReserved: [ULONG_PTR; 4],
        pub TdiReserved: [ULONG_PTR; 4],
        pub TdiClientReserved: [ULONG_PTR; 4],
    }

    /// `NET_PNP_EVENT_NOTIFICATION`, passed to `ProtocolNetPnPEvent`.
    #[repr(C)]
    pub struct NET_PNP_EVENT_NOTIFICATION {
        pub Header: NDIS_OBJECT_HEADER,
        pub PortNumber: NDIS_PORT_NUMBER,
        pub NetPnPEvent: NET_PNP_EVENT,
        pub Flags: u32,
        pub SwitchId: u32,
        pub VPortId: u32,
    }

    /// `NDIS_PROTOCOL_PAUSE_PARAMETERS` (the buffer of `NetEventPause`).
    #[repr(C)]
    pub struct NDIS_PROTOCOL_PAUSE_PARAMETERS {
        pub Header: NDIS_OBJECT_HEADER,
        pub Flags: u32,
        pub PauseReason: u32,
    }

    /// `NDIS_PROTOCOL_RESTART_PARAMETERS` (the buffer of `NetEventRestart`).
    #[repr(C)]
    pub struct NDIS_PROTOCOL_RESTART_PARAMETERS {
        pub Header: NDIS_OBJECT_HEADER,
        /// Filter module names: each is a `USHORT` byte length followed by
        /// that many bytes of UTF-16.
        pub FilterModuleNameBuffer: *mut u8,
        pub FilterModuleNameBufferLength: u32,
        pub RestartAttributes: *mut NDIS_RESTART_ATTRIBUTES,
        pub BoundIfIndex: NET_IFINDEX,
        pub BoundIfNetluid: NET_LUID,
        pub Flags: u32,
    }

    /// `NDIS_RESTART_ATTRIBUTES`: one element of a chain; `DataLength`
    /// bytes of data (of the type `Oid` names) start at `Data`.
    #[repr(C, align(16))]
    pub struct NDIS_RESTART_ATTRIBUTES {
        pub Next: *mut NDIS_RESTART_ATTRIBUTES,
        pub Oid: NDIS_OID,
        pub DataLength: u32,
        pub Data: [u8; 1],
    }

    /// `NDIS_RESTART_GENERAL_ATTRIBUTES`, the data of a restart attribute
    /// whose `Oid` is `OID_GEN_MINIPORT_RESTART_ATTRIBUTES`.
    #[repr(C)]
    pub struct NDIS_RESTART_GENERAL_ATTRIBUTES {
        pub Header: NDIS_OBJECT_HEADER,
        pub MtuSize: u32,
        pub MaxXmitLinkSpeed: u64,
        pub MaxRcvLinkSpeed: u64,
        pub LookaheadSize: u32,
        pub MacOptions: u32,
        pub SupportedPacketFilters: u32,
        pub MaxMulticastListSize: u32,
        pub RecvScaleCapabilities: PVOID,
        pub AccessType: NET_IF_ACCESS_TYPE,
        pub Flags: u32,
        pub ConnectionType: NET_IF_CONNECTION_TYPE,
        pub SupportedStatistics: u32,
        pub DataBackFillSize: u32,
        pub ContextBackFillSize: u32,
        pub SupportedOidList: *mut NDIS_OID,
        pub SupportedOidListLength: u32,
        pub MaxLookaheadSizeAccessed: u32,
    }

    /// `NDIS_OID_REQUEST::DATA.QUERY_INFORMATION`.
    #[c = "NDIS_OID_REQUEST::_REQUEST_DATA::_QUERY"]
    #[repr(C)]
    pub struct NDIS_OID_QUERY {
        pub Oid: NDIS_OID,
        pub InformationBuffer: PVOID,
        pub InformationBufferLength: u32,
        pub BytesWritten: u32,
        pub BytesNeeded: u32,
    }

    /// `NDIS_OID_REQUEST::DATA.SET_INFORMATION`.
    #[c = "NDIS_OID_REQUEST::_REQUEST_DATA::_SET"]
    #[repr(C)]
    pub struct NDIS_OID_SET {
        pub Oid: NDIS_OID,
        pub InformationBuffer: PVOID,
        pub InformationBufferLength: u32,
        pub BytesRead: u32,
        pub BytesNeeded: u32,
    }

    /// `NDIS_OID_REQUEST::DATA.METHOD_INFORMATION`.
    #[c = "NDIS_OID_REQUEST::_REQUEST_DATA::_METHOD"]
    #[repr(C)]
    pub struct NDIS_OID_METHOD {
        pub Oid: NDIS_OID,
        pub InformationBuffer: PVOID,
        pub InputBufferLength: u32,
        pub OutputBufferLength: u32,
        pub MethodId: u32,
        pub BytesWritten: u32,
        pub BytesRead: u32,
        pub BytesNeeded: u32,
    }

    /// `NDIS_OID_REQUEST::DATA`.
    #[c = "NDIS_OID_REQUEST::_REQUEST_DATA"]
    #[repr(C)]
    pub union NDIS_OID_REQUEST_DATA {
        pub QUERY_INFORMATION: NDIS_OID_QUERY,
        pub SET_INFORMATION: NDIS_OID_SET,
        pub METHOD_INFORMATION: NDIS_OID_METHOD,
    }

    /// `NDIS_OID_REQUEST`.
    #[repr(C)]
    pub struct NDIS_OID_REQUEST {
        pub Header: NDIS_OBJECT_HEADER,
        pub RequestType: NDIS_REQUEST_TYPE,
        pub PortNumber: NDIS_PORT_NUMBER,
        pub Timeout: u32,
        pub RequestId: PVOID,
        pub RequestHandle: NDIS_HANDLE,
        pub DATA: NDIS_OID_REQUEST_DATA,
        pub NdisReserved: [PVOID; 16],
        pub MiniportReserved: [PVOID; 2],
        pub SourceReserved: [PVOID; 2],
        pub SupportedRevision: u8,
        pub Reserved1: u8,
        pub Reserved2: u16,
        pub SwitchId: u32,
        pub VPortId: u32,
        pub Flags: u32,
    }

    /// `NDIS_STATUS_INDICATION`, passed to `ProtocolStatusEx`.
    #[repr(C)]
    pub struct NDIS_STATUS_INDICATION {
        pub Header: NDIS_OBJECT_HEADER,
        pub SourceHandle: NDIS_HANDLE,
        pub PortNumber: NDIS_PORT_NUMBER,
        pub StatusCode: NDIS_STATUS,
        pub Flags: u32,
        pub DestinationHandle: NDIS_HANDLE,
        pub RequestId: PVOID,
        pub StatusBuffer: PVOID,
        pub StatusBufferSize: u32,
        pub Guid: GUID,
        pub NdisReserved: [PVOID; 4],
    }

    /// `NDIS_LINK_STATE`, the buffer of `NDIS_STATUS_LINK_STATE` and of
    /// `OID_GEN_LINK_STATE`.
    #[repr(C)]
    pub struct NDIS_LINK_STATE {
        pub Header: NDIS_OBJECT_HEADER,
        pub MediaConnectState: NDIS_MEDIA_CONNECT_STATE,
        pub MediaDuplexState: NDIS_MEDIA_DUPLEX_STATE,
        pub XmitLinkSpeed: u64,
        pub RcvLinkSpeed: u64,
        pub PauseFunctions: NDIS_SUPPORTED_PAUSE_FUNCTIONS,
        pub AutoNegotiationFlags: u32,
    }

    /// `NDIS_LINK_PARAMETERS` (`OID_GEN_LINK_PARAMETERS`).
    #[repr(C)]
    pub struct NDIS_LINK_PARAMETERS {
        pub Header: NDIS_OBJECT_HEADER,
        pub MediaDuplexState: NDIS_MEDIA_DUPLEX_STATE,
        pub XmitLinkSpeed: u64,
        pub RcvLinkSpeed: u64,
        pub PauseFunctions: NDIS_SUPPORTED_PAUSE_FUNCTIONS,
        pub AutoNegotiationFlags: u32,
    }

    /// `NDIS_SPIN_LOCK`.
    #[repr(C)]
    pub struct NDIS_SPIN_LOCK {
        pub SpinLock: KSPIN_LOCK,
        pub OldIrql: KIRQL,
    }

    /// `LOCK_STATE_EX`: the caller's state for one `NDIS_RW_LOCK_EX`
    /// acquisition.
    #[repr(C)]
    pub struct LOCK_STATE_EX {
        pub OldIrql: KIRQL,
        pub LockState: u8,
        pub Flags: u8,
    }

    /// `NDIS_EVENT`.
    #[repr(C)]
    pub struct NDIS_EVENT {
        pub Event: KEVENT,
    }

    /// `NDIS_STATISTICS_INFO` (`OID_GEN_STATISTICS`).
    #[repr(C)]
    pub struct NDIS_STATISTICS_INFO {
        pub Header: NDIS_OBJECT_HEADER,
        pub SupportedStatistics: u32,
        pub ifInDiscards: u64,
        pub ifInErrors: u64,
        pub ifHCInOctets: u64,
        pub ifHCInUcastPkts: u64,
        pub ifHCInMulticastPkts: u64,
        pub ifHCInBroadcastPkts: u64,
        pub ifHCOutOctets: u64,
        pub ifHCOutUcastPkts: u64,
        pub ifHCOutMulticastPkts: u64,
        pub ifHCOutBroadcastPkts: u64,
        pub ifOutErrors: u64,
        pub ifOutDiscards: u64,
        pub ifHCInUcastOctets: u64,
        pub ifHCInMulticastOctets: u64,
        pub ifHCInBroadcastOctets: u64,
        pub ifHCOutUcastOctets: u64,
        pub ifHCOutMulticastOctets: u64,
        pub ifHCOutBroadcastOctets: u64,
    }

    /// `NDIS_DEVICE_OBJECT_ATTRIBUTES` (`NdisRegisterDeviceEx`; declared for
    /// completeness of the checked layouts, not used by a protocol driver).
    #[repr(C)]
    pub struct NDIS_DEVICE_OBJECT_ATTRIBUTES {
        pub Header: NDIS_OBJECT_HEADER,
        pub DeviceName: *mut UNICODE_STRING,
        pub SymbolicName: *mut UNICODE_STRING,
        pub MajorFunctions: *mut DRIVER_DISPATCH,
        pub ExtensionSize: u32,
        pub DefaultSDDLString: *const UNICODE_STRING,
        pub DeviceClassGuid: *const GUID,
    }

    /// `NET_BUFFER_DATA_LENGTH`.
    #[repr(C)]
    pub union NET_BUFFER_DATA_LENGTH {
        pub DataLength: u32,
        pub stDataLength: SIZE_T,
    }

    /// `NET_BUFFER_DATA`.
    #[repr(C)]
    pub struct NET_BUFFER_DATA {
        pub Next: *mut NET_BUFFER,
        pub CurrentMdl: *mut MDL,
        pub CurrentMdlOffset: u32,
        pub NbDataLength: NET_BUFFER_DATA_LENGTH,
        pub MdlChain: *mut MDL,
        pub DataOffset: u32,
    }

    /// `NET_BUFFER_HEADER`.
    #[repr(C)]
    pub union NET_BUFFER_HEADER {
        pub NetBufferData: NET_BUFFER_DATA,
        pub Link: SLIST_HEADER,
    }

    /// The anonymous struct at the head of `NET_BUFFER`; the same members
    /// as `NET_BUFFER_DATA`, with the length union anonymous.
    #[repr(C)]
    pub struct NET_BUFFER_FIELDS {
        pub Next: *mut NET_BUFFER,
        pub CurrentMdl: *mut MDL,
        pub CurrentMdlOffset: u32,
        pub anon: NET_BUFFER_DATA_LENGTH,
        pub MdlChain: *mut MDL,
        pub DataOffset: u32,
    }

    /// The anonymous union at the head of `NET_BUFFER`.
    #[repr(C)]
    pub union NET_BUFFER_HEAD {
        pub anon: NET_BUFFER_FIELDS,
        pub Link: SLIST_HEADER,
        pub NetBufferHeader: NET_BUFFER_HEADER,
    }

    /// The anonymous `{ SharedMemoryInfo; ScatterGatherList; }` union.
    #[repr(C)]
    pub union NET_BUFFER_SHARED {
        pub SharedMemoryInfo: PVOID,
        pub ScatterGatherList: PVOID,
    }

    /// `NET_BUFFER`: one frame's data, described by an MDL chain.
    #[repr(C)]
    pub struct NET_BUFFER {
        pub anon: NET_BUFFER_HEAD,
        pub ChecksumBias: u16,
        pub Reserved: u16,
        pub NdisPoolHandle: NDIS_HANDLE,
        pub NdisReserved: [PVOID; 2],
        pub ProtocolReserved: [PVOID; 6],
        pub MiniportReserved: [PVOID; 4],
        pub DataPhysicalAddress: u64,
        pub anon2: NET_BUFFER_SHARED,
    }

    /// `NET_BUFFER_LIST_DATA`.
    #[repr(C)]
    pub struct NET_BUFFER_LIST_DATA {
        pub Next: *mut NET_BUFFER_LIST,
        pub FirstNetBuffer: *mut NET_BUFFER,
    }

    /// `NET_BUFFER_LIST_HEADER`.
    #[repr(C)]
    pub union NET_BUFFER_LIST_HEADER {
        pub NetBufferListData: NET_BUFFER_LIST_DATA,
        pub Link: SLIST_HEADER,
    }

    /// The anonymous union at the head of `NET_BUFFER_LIST`.
    #[repr(C)]
    pub union NET_BUFFER_LIST_HEAD {
        pub anon: NET_BUFFER_LIST_DATA,
        pub Link: SLIST_HEADER,
        pub NetBufferListHeader: NET_BUFFER_LIST_HEADER,
    }

    /// The anonymous `{ Status; NdisReserved2; }` union.
    #[repr(C)]
    pub union NET_BUFFER_LIST_STATUS {
        pub Status: NDIS_STATUS,
        pub NdisReserved2: u32,
    }

    /// `NET_BUFFER_LIST`. NDIS allocates these; the size differs between
    /// Windows versions, so a driver never depends on it.
    #[repr(C)]
    pub struct NET_BUFFER_LIST {
        pub anon: NET_BUFFER_LIST_HEAD,
        pub Context: *mut NET_BUFFER_LIST_CONTEXT,
        pub ParentNetBufferList: *mut NET_BUFFER_LIST,
        pub NdisPoolHandle: NDIS_HANDLE,
        pub _pad0: PVOID,
        pub NdisReserved: [PVOID; 2],
        pub ProtocolReserved: [PVOID; 4],
        pub MiniportReserved: [PVOID; 2],
        pub Scratch: PVOID,
        pub SourceHandle: NDIS_HANDLE,
        pub NblFlags: u32,
        pub ChildRefCount: i32,
        pub Flags: u32,
        pub anon2: NET_BUFFER_LIST_STATUS,
        pub NetBufferListInfo: [PVOID; MAX_NET_BUFFER_LIST_INFO],
    }

    /// `NET_BUFFER_LIST_CONTEXT`.
    #[repr(C, align(16))]
    pub struct NET_BUFFER_LIST_CONTEXT {
        pub Next: *mut NET_BUFFER_LIST_CONTEXT,
        pub Size: u16,
        pub Offset: u16,
        pub _pad0: u32,
        pub ContextData: [u8; 0],
    }

    /// `NET_BUFFER_LIST_POOL_PARAMETERS`.
    #[repr(C)]
    pub struct NET_BUFFER_LIST_POOL_PARAMETERS {
        pub Header: NDIS_OBJECT_HEADER,
        pub ProtocolId: u8,
        pub fAllocateNetBuffer: BOOLEAN,
        pub ContextSize: u16,
        pub PoolTag: u32,
        pub DataSize: u32,
    }

    /// `NET_BUFFER_POOL_PARAMETERS`.
    #[repr(C)]
    pub struct NET_BUFFER_POOL_PARAMETERS {
        pub Header: NDIS_OBJECT_HEADER,
        pub PoolTag: u32,
        pub DataSize: u32,
    }

    /// `NDIS_NET_BUFFER_LIST_8021Q_INFO`: the value stored in
    /// `NetBufferListInfo[Ieee8021QNetBufferListInfo]`, a pointer-sized
    /// bitfield: `UserPriority:3, CanonicalFormatId:1, VlanId:12`, then
    /// reserved bits.
    #[repr(C)]
    pub struct NDIS_NET_BUFFER_LIST_8021Q_INFO {
        pub Value: PVOID,
    }

    /// `NDIS_RSC_NBL_INFO.Info`.
    #[c = "NDIS_RSC_NBL_INFO::Info"]
    #[repr(C)]
    pub struct NDIS_RSC_NBL_INFO_COUNTS {
        /// Segments coalesced into the NBL's one NET_BUFFER; 0 for a frame
        /// that is not coalesced.
        pub CoalescedSegCount: u16,
        /// Duplicate ACKs met while coalescing (non-zero only with a count).
        pub DupAckCount: u16,
    }

    /// `NDIS_RSC_NBL_INFO`: the value of
    /// `NetBufferListInfo[TcpRecvSegCoalesceInfo]` (RSC, NDIS 6.30).
    #[repr(C)]
    pub union NDIS_RSC_NBL_INFO {
        pub Info: NDIS_RSC_NBL_INFO_COUNTS,
        pub Value: PVOID,
    }

    /// `NDIS_UDP_RSC_OFFLOAD_NET_BUFFER_LIST_INFO.Receive`.
    #[c = "NDIS_UDP_RSC_OFFLOAD_NET_BUFFER_LIST_INFO::Receive"]
    #[repr(C)]
    pub struct NDIS_UDP_RSC_OFFLOAD_RECEIVE {
        /// Datagrams coalesced into the NBL.
        pub SegCount: u16,
        /// The UDP payload size of each (the last may be shorter).
        pub SegSize: u16,
    }

    /// The anonymous union of `NDIS_UDP_RSC_OFFLOAD_NET_BUFFER_LIST_INFO`.
    #[c = "NDIS_UDP_RSC_OFFLOAD_NET_BUFFER_LIST_INFO::anon"]
    #[repr(C)]
    pub union NDIS_UDP_RSC_OFFLOAD_NBL_INFO_UNION {
        pub Receive: NDIS_UDP_RSC_OFFLOAD_RECEIVE,
        pub Value: PVOID,
    }

    /// `NDIS_UDP_RSC_OFFLOAD_NET_BUFFER_LIST_INFO`: the value of
    /// `NetBufferListInfo[UdpRecvSegCoalesceOffloadInfo]` (URO, NDIS 6.89).
    #[repr(C)]
    pub struct NDIS_UDP_RSC_OFFLOAD_NET_BUFFER_LIST_INFO {
        pub anon: NDIS_UDP_RSC_OFFLOAD_NBL_INFO_UNION,
    }
}
