//! Constants of ndis.h, ntddndis.h, wdm.h and ntstatus.h that rawnic and
//! ndisim use. Values only; no logic.

use crate::types::*;

// --- NTSTATUS --------------------------------------------------------------
pub const STATUS_SUCCESS: NTSTATUS = 0;
pub const STATUS_PENDING: NTSTATUS = 0x0000_0103;
pub const STATUS_UNSUCCESSFUL: NTSTATUS = 0xC000_0001_u32 as i32;
pub const STATUS_NOT_IMPLEMENTED: NTSTATUS = 0xC000_0002_u32 as i32;
pub const STATUS_INFO_LENGTH_MISMATCH: NTSTATUS = 0xC000_0004_u32 as i32;
pub const STATUS_INVALID_HANDLE: NTSTATUS = 0xC000_0008_u32 as i32;
pub const STATUS_INVALID_PARAMETER: NTSTATUS = 0xC000_000D_u32 as i32;
pub const STATUS_INVALID_DEVICE_REQUEST: NTSTATUS = 0xC000_0010_u32 as i32;
pub const STATUS_BUFFER_TOO_SMALL: NTSTATUS = 0xC000_0023_u32 as i32;
pub const STATUS_OBJECT_NAME_INVALID: NTSTATUS = 0xC000_0033_u32 as i32;
pub const STATUS_OBJECT_NAME_NOT_FOUND: NTSTATUS = 0xC000_0034_u32 as i32;
pub const STATUS_OBJECT_NAME_COLLISION: NTSTATUS = 0xC000_0035_u32 as i32;
pub const STATUS_ACCESS_DENIED: NTSTATUS = 0xC000_0022_u32 as i32;
pub const STATUS_REVISION_MISMATCH: NTSTATUS = 0xC000_0059_u32 as i32;
pub const STATUS_INTEGER_OVERFLOW: NTSTATUS = 0xC000_0095_u32 as i32;
pub const STATUS_INSUFFICIENT_RESOURCES: NTSTATUS = 0xC000_009A_u32 as i32;
pub const STATUS_DEVICE_NOT_READY: NTSTATUS = 0xC000_00A3_u32 as i32;
pub const STATUS_NOT_SUPPORTED: NTSTATUS = 0xC000_00BB_u32 as i32;
pub const STATUS_CANCELLED: NTSTATUS = 0xC000_0120_u32 as i32;
pub const STATUS_INVALID_DEVICE_STATE: NTSTATUS = 0xC000_0184_u32 as i32;
pub const STATUS_INVALID_BUFFER_SIZE: NTSTATUS = 0xC000_0206_u32 as i32;
pub const STATUS_DEVICE_REMOVED: NTSTATUS = 0xC000_02B6_u32 as i32;
pub const STATUS_BUFFER_OVERFLOW: NTSTATUS = 0x8000_0005_u32 as i32;

// --- NDIS_STATUS -----------------------------------------------------------
pub const NDIS_STATUS_SUCCESS: NDIS_STATUS = 0;
pub const NDIS_STATUS_PENDING: NDIS_STATUS = 0x0000_0103;
pub const NDIS_STATUS_NOT_RECOGNIZED: NDIS_STATUS = 0x0001_0001;
pub const NDIS_STATUS_NOT_COPIED: NDIS_STATUS = 0x0001_0002;
/// The miniport tried a set on its NIC, which failed.
pub const NDIS_STATUS_NOT_ACCEPTED: NDIS_STATUS = 0x0001_0003;
pub const NDIS_STATUS_INDICATION_REQUIRED: NDIS_STATUS = 0x4023_0001;
pub const NDIS_STATUS_MEDIA_CONNECT: NDIS_STATUS = 0x4001_000B;
pub const NDIS_STATUS_MEDIA_DISCONNECT: NDIS_STATUS = 0x4001_000C;
pub const NDIS_STATUS_LINK_STATE: NDIS_STATUS = 0x4001_0017;
pub const NDIS_STATUS_FAILURE: NDIS_STATUS = 0xC000_0001_u32 as i32;
pub const NDIS_STATUS_RESOURCES: NDIS_STATUS = 0xC000_009A_u32 as i32;
pub const NDIS_STATUS_NOT_SUPPORTED: NDIS_STATUS = 0xC000_00BB_u32 as i32;
pub const NDIS_STATUS_INVALID_PARAMETER: NDIS_STATUS = 0xC000_000D_u32 as i32;
pub const NDIS_STATUS_CLOSING: NDIS_STATUS = 0xC001_0002_u32 as i32;
/// `NdisRegisterProtocolDriver`: the NDIS version asked for is not one this
/// NDIS supports.
pub const NDIS_STATUS_BAD_VERSION: NDIS_STATUS = 0xC001_0004_u32 as i32;
pub const NDIS_STATUS_BAD_CHARACTERISTICS: NDIS_STATUS = 0xC001_0005_u32 as i32;
pub const NDIS_STATUS_ADAPTER_NOT_FOUND: NDIS_STATUS = 0xC001_0006_u32 as i32;
pub const NDIS_STATUS_ADAPTER_NOT_READY: NDIS_STATUS = 0xC001_0011_u32 as i32;
pub const NDIS_STATUS_REQUEST_ABORTED: NDIS_STATUS = 0xC001_000C_u32 as i32;
pub const NDIS_STATUS_RESET_IN_PROGRESS: NDIS_STATUS = 0xC001_000D_u32 as i32;
pub const NDIS_STATUS_INVALID_LENGTH: NDIS_STATUS = 0xC001_0014_u32 as i32;
pub const NDIS_STATUS_MULTICAST_FULL: NDIS_STATUS = 0xC001_0009_u32 as i32;
/// A request's `InformationBuffer` holds data not valid for its OID.
pub const NDIS_STATUS_INVALID_DATA: NDIS_STATUS = 0xC001_0015_u32 as i32;
pub const NDIS_STATUS_BUFFER_TOO_SHORT: NDIS_STATUS = 0xC001_0016_u32 as i32;
pub const NDIS_STATUS_INVALID_OID: NDIS_STATUS = 0xC001_0017_u32 as i32;
pub const NDIS_STATUS_UNSUPPORTED_MEDIA: NDIS_STATUS = 0xC001_0019_u32 as i32;
pub const NDIS_STATUS_MEDIA_DISCONNECTED: NDIS_STATUS = 0xC023_001F_u32 as i32;
pub const NDIS_STATUS_NO_CABLE: NDIS_STATUS = 0xC001_001F_u32 as i32;
/// NDIS 6's status for sends a miniport aborted (pause, reset, halt):
/// `STATUS_NDIS_REQUEST_ABORTED`, not the NDIS 5 `NDIS_STATUS_REQUEST_ABORTED`
/// above (which OID requests still complete with).
pub const NDIS_STATUS_SEND_ABORTED: NDIS_STATUS = 0xC023_000C_u32 as i32;
pub const NDIS_STATUS_PAUSED: NDIS_STATUS = 0xC023_002A_u32 as i32;
pub const NDIS_STATUS_LOW_POWER_STATE: NDIS_STATUS = 0xC023_002F_u32 as i32;

// --- NDIS object headers ---------------------------------------------------
pub const NDIS_OBJECT_TYPE_DEFAULT: u8 = 0x80;
pub const NDIS_OBJECT_TYPE_BIND_PARAMETERS: u8 = 0x86;
pub const NDIS_OBJECT_TYPE_OPEN_PARAMETERS: u8 = 0x87;
pub const NDIS_OBJECT_TYPE_PROTOCOL_DRIVER_CHARACTERISTICS: u8 = 0x95;
pub const NDIS_OBJECT_TYPE_OID_REQUEST: u8 = 0x96;
pub const NDIS_OBJECT_TYPE_STATUS_INDICATION: u8 = 0x98;
pub const NDIS_OBJECT_TYPE_RESTART_GENERAL_ATTRIBUTES: u8 = 0xA2;
pub const NDIS_OBJECT_TYPE_PROTOCOL_RESTART_PARAMETERS: u8 = 0xA3;

pub const NDIS_PROTOCOL_DRIVER_CHARACTERISTICS_REVISION_2: u8 = 2;
/// `RTL_SIZEOF_THROUGH_FIELD(..., DirectOidRequestCompleteHandler)`.
pub const NDIS_SIZEOF_PROTOCOL_DRIVER_CHARACTERISTICS_REVISION_2: u16 = 0x80;
pub const NDIS_OPEN_PARAMETERS_REVISION_1: u8 = 1;
/// `RTL_SIZEOF_THROUGH_FIELD(NDIS_OPEN_PARAMETERS, FrameTypeArraySize)`.
pub const NDIS_SIZEOF_OPEN_PARAMETERS_REVISION_1: u16 = 0x34;
pub const NDIS_OID_REQUEST_REVISION_1: u8 = 1;
/// `RTL_SIZEOF_THROUGH_FIELD(NDIS_OID_REQUEST, Reserved2)`.
pub const NDIS_SIZEOF_OID_REQUEST_REVISION_1: u16 = 0xEC;
/// NDIS 6.50 and later: `SwitchId`, `VPortId` and `Flags` added.
pub const NDIS_OID_REQUEST_REVISION_2: u8 = 2;
/// `RTL_SIZEOF_THROUGH_FIELD(NDIS_OID_REQUEST, Flags)`.
pub const NDIS_SIZEOF_OID_REQUEST_REVISION_2: u16 = 0xF8;
/// `NDIS_OID_REQUEST.Flags`: `VPortId` names the VPort the request is for.
pub const NDIS_OID_REQUEST_FLAGS_VPORT_ID_VALID: u32 = 0x1;
const _: () = assert!(
    NDIS_SIZEOF_OID_REQUEST_REVISION_1 as usize == core::mem::offset_of!(crate::NDIS_OID_REQUEST, Reserved2) + 2
        && NDIS_SIZEOF_OID_REQUEST_REVISION_2 as usize == core::mem::offset_of!(crate::NDIS_OID_REQUEST, Flags) + 4
);
pub const NDIS_PROTOCOL_RESTART_PARAMETERS_REVISION_1: u8 = 1;
pub const NDIS_SIZEOF_PROTOCOL_RESTART_PARAMETERS_REVISION_1: u16 = 0x34;
pub const NDIS_RESTART_GENERAL_ATTRIBUTES_REVISION_1: u8 = 1;
pub const NDIS_SIZEOF_RESTART_GENERAL_ATTRIBUTES_REVISION_1: u16 = 0x54;
pub const NDIS_RESTART_GENERAL_ATTRIBUTES_REVISION_2: u8 = 2;
pub const NDIS_SIZEOF_RESTART_GENERAL_ATTRIBUTES_REVISION_2: u16 = 0x58;
pub const NDIS_BIND_PARAMETERS_REVISION_1: u8 = 1;
pub const NDIS_BIND_PARAMETERS_REVISION_4: u8 = 4;
pub const NDIS_STATUS_INDICATION_REVISION_1: u8 = 1;
pub const NDIS_SIZEOF_STATUS_INDICATION_REVISION_1: u16 = 0x70;
pub const NDIS_LINK_STATE_REVISION_1: u8 = 1;
pub const NDIS_SIZEOF_LINK_STATE_REVISION_1: u16 = 0x28;
pub const NET_BUFFER_LIST_POOL_PARAMETERS_REVISION_1: u8 = 1;
pub const NDIS_SIZEOF_NET_BUFFER_LIST_POOL_PARAMETERS_REVISION_1: u16 = 0x10;
pub const NET_BUFFER_POOL_PARAMETERS_REVISION_1: u8 = 1;
pub const NDIS_SIZEOF_NET_BUFFER_POOL_PARAMETERS_REVISION_1: u16 = 0xC;
pub const NDIS_STATISTICS_INFO_REVISION_1: u8 = 1;
pub const NDIS_SIZEOF_STATISTICS_INFO_REVISION_1: u16 = 0x98;
pub const NDIS_PROTOCOL_PAUSE_PARAMETERS_REVISION_1: u8 = 1;
pub const NET_PNP_EVENT_NOTIFICATION_REVISION_1: u8 = 1;
/// `RTL_SIZEOF_THROUGH_FIELD(NET_PNP_EVENT_NOTIFICATION, Flags)`.
pub const NDIS_SIZEOF_NET_PNP_EVENT_NOTIFICATION_REVISION_1: u16 = 0xA4;

// --- NDIS versions ---------------------------------------------------------
pub const NDIS_PROTOCOL_MAJOR_VERSION: u8 = 6;
/// NDIS 6.30 (Windows 8 and later): rawnic also needs Windows 8 for
/// `KeQuerySystemTimePrecise`, `NonPagedPoolNx` and `MdlMappingNoExecute`.
pub const NDIS_PROTOCOL_MINOR_VERSION: u8 = 30;
/// NDIS 6.30's minor version (RSC, `TcpRecvSegCoalesceInfo`).
pub const NDIS_MINOR_VERSION_630: u8 = 30;
/// NDIS 6.50's minor version (`NDIS_OID_REQUEST_REVISION_2`).
pub const NDIS_MINOR_VERSION_650: u8 = 50;
/// NDIS 6.89's minor version (Windows 11 24H2: URO,
/// `UdpRecvSegCoalesceOffloadInfo`, and the protocol flag
/// `NDIS_PROTOCOL_DRIVER_UDP_RSC_NOT_SUPPORTED`).
pub const NDIS_MINOR_VERSION_689: u8 = 89;

// --- NDIS_PROTOCOL_DRIVER_CHARACTERISTICS Flags ------------------------------
/// NDIS 6.89 and later: the protocol opts out of URO (NDIS then turns URO
/// off on the adapters it binds). Reserved, must be 0, before 6.89.
pub const NDIS_PROTOCOL_DRIVER_UDP_RSC_NOT_SUPPORTED: u32 = 0x0000_0008;

// --- NDIS_MEDIUM -----------------------------------------------------------
pub const NdisMedium802_3: NDIS_MEDIUM = 0;
pub const NdisMediumLoopback: NDIS_MEDIUM = 17;

// --- NET_PNP_EVENT_CODE ----------------------------------------------------
pub const NetEventSetPower: NET_PNP_EVENT_CODE = 0;
pub const NetEventQueryPower: NET_PNP_EVENT_CODE = 1;
pub const NetEventQueryRemoveDevice: NET_PNP_EVENT_CODE = 2;
pub const NetEventCancelRemoveDevice: NET_PNP_EVENT_CODE = 3;
pub const NetEventReconfigure: NET_PNP_EVENT_CODE = 4;
pub const NetEventBindList: NET_PNP_EVENT_CODE = 5;
pub const NetEventBindsComplete: NET_PNP_EVENT_CODE = 6;
pub const NetEventPnPCapabilities: NET_PNP_EVENT_CODE = 7;
pub const NetEventPause: NET_PNP_EVENT_CODE = 8;
pub const NetEventRestart: NET_PNP_EVENT_CODE = 9;
pub const NetEventPortActivation: NET_PNP_EVENT_CODE = 10;
pub const NetEventPortDeactivation: NET_PNP_EVENT_CODE = 11;
pub const NetEventIMReEnableDevice: NET_PNP_EVENT_CODE = 12;

// --- NET_DEVICE_POWER_STATE ------------------------------------------------
pub const NetDeviceStateUnspecified: NET_DEVICE_POWER_STATE = 0;
pub const NetDeviceStateD0: NET_DEVICE_POWER_STATE = 1;
pub const NetDeviceStateD3: NET_DEVICE_POWER_STATE = 4;

// --- NDIS_REQUEST_TYPE -----------------------------------------------------
pub const NdisRequestQueryInformation: NDIS_REQUEST_TYPE = 0;
pub const NdisRequestSetInformation: NDIS_REQUEST_TYPE = 1;
pub const NdisRequestQueryStatistics: NDIS_REQUEST_TYPE = 2;
pub const NdisRequestMethod: NDIS_REQUEST_TYPE = 12;

// --- NET_BUFFER_LIST_INFO indices (NDIS_NET_BUFFER_LIST_INFO) ---------------
pub const TcpIpChecksumNetBufferListInfo: usize = 0;
pub const Ieee8021QNetBufferListInfo: usize = 4;
pub const NetBufferListCancelId: usize = 5;
pub const NetBufferListFrameType: usize = 7;
pub const NetBufferListHashValue: usize = 8;
/// Send path: `TcpReceiveBytesTransferred` / `NrtNameResolutionId`. On the
/// receive path of NDIS 6.84 and later the slot is
/// `UdpRecvSegCoalesceOffloadInfo` (an
/// `NDIS_UDP_RSC_OFFLOAD_NET_BUFFER_LIST_INFO`).
pub const TcpReceiveBytesTransferred: usize = 17;
/// URO (NDIS 6.89): a receive NBL's UDP coalescing info, an
/// `NDIS_UDP_RSC_OFFLOAD_NET_BUFFER_LIST_INFO`. The same slot as
/// `TcpReceiveBytesTransferred`.
pub const UdpRecvSegCoalesceOffloadInfo: usize = 17;
/// RSC (NDIS 6.30): a receive NBL's TCP coalescing counts, an
/// `NDIS_RSC_NBL_INFO`. (On the send path the same slot is
/// `UdpSegmentationOffloadInfo`.)
pub const TcpRecvSegCoalesceInfo: usize = 22;
/// RSC: the TCP timestamp delta of a coalesced unit (a ULONG).
pub const RscTcpTimestampDelta: usize = 23;

// --- Media state -----------------------------------------------------------
pub const MediaConnectStateUnknown: NDIS_MEDIA_CONNECT_STATE = 0;
pub const MediaConnectStateConnected: NDIS_MEDIA_CONNECT_STATE = 1;
pub const MediaConnectStateDisconnected: NDIS_MEDIA_CONNECT_STATE = 2;
pub const MediaDuplexStateUnknown: NDIS_MEDIA_DUPLEX_STATE = 0;
pub const MediaDuplexStateHalf: NDIS_MEDIA_DUPLEX_STATE = 1;
pub const MediaDuplexStateFull: NDIS_MEDIA_DUPLEX_STATE = 2;

// --- Packet filters (OID_GEN_CURRENT_PACKET_FILTER) -------------------------
pub const NDIS_PACKET_TYPE_DIRECTED: u32 = 0x0000_0001;
pub const NDIS_PACKET_TYPE_MULTICAST: u32 = 0x0000_0002;
pub const NDIS_PACKET_TYPE_ALL_MULTICAST: u32 = 0x0000_0004;
pub const NDIS_PACKET_TYPE_BROADCAST: u32 = 0x0000_0008;
pub const NDIS_PACKET_TYPE_PROMISCUOUS: u32 = 0x0000_0020;

// --- MAC options (NDIS_BIND_PARAMETERS / restart attributes MacOptions) ------
pub const NDIS_MAC_OPTION_8021P_PRIORITY: u32 = 0x0000_0040;
pub const NDIS_MAC_OPTION_8021Q_VLAN: u32 = 0x0000_0200;

// --- Send, receive and return flags ----------------------------------------
pub const NDIS_SEND_FLAGS_DISPATCH_LEVEL: u32 = 0x0000_0001;
pub const NDIS_SEND_FLAGS_CHECK_FOR_LOOPBACK: u32 = 0x0000_0002;
pub const NDIS_SEND_COMPLETE_FLAGS_DISPATCH_LEVEL: u32 = 0x0000_0001;
pub const NDIS_RECEIVE_FLAGS_DISPATCH_LEVEL: u32 = 0x0000_0001;
pub const NDIS_RECEIVE_FLAGS_RESOURCES: u32 = 0x0000_0002;
pub const NDIS_RECEIVE_FLAGS_SINGLE_ETHER_TYPE: u32 = 0x0000_0100;
pub const NDIS_RECEIVE_FLAGS_SINGLE_VLAN: u32 = 0x0000_0200;
pub const NDIS_RECEIVE_FLAGS_PERFECT_FILTERED: u32 = 0x0000_0400;
pub const NDIS_RECEIVE_FLAGS_SINGLE_QUEUE: u32 = 0x0000_0800;
pub const NDIS_RECEIVE_FLAGS_MORE_NBLS: u32 = 0x0000_2000;
pub const NDIS_RETURN_FLAGS_DISPATCH_LEVEL: u32 = 0x0000_0001;
/// `NET_BUFFER_LIST::NblFlags`: a layer-2 loopback NBL (NDIS looped back a
/// send to the receive path).
pub const NDIS_NBL_FLAGS_IS_LOOPBACK_PACKET: u32 = 0x0000_8000;
pub const NDIS_PROTOCOL_ID_DEFAULT: u8 = 0x00;
pub const NDIS_RWL_AT_DISPATCH_LEVEL: u8 = 0x01;

// --- NBL flags --------------------------------------------------------------
/// The NDIS 6.30+ value.
pub const NBL_FLAGS_PROTOCOL_RESERVED: u32 = 0xFFF0_0003;

// --- OIDs ---------------------------------------------------------------------
pub const OID_GEN_SUPPORTED_LIST: NDIS_OID = 0x0001_0101;
pub const OID_GEN_HARDWARE_STATUS: NDIS_OID = 0x0001_0102;
pub const OID_GEN_MEDIA_SUPPORTED: NDIS_OID = 0x0001_0103;
pub const OID_GEN_MEDIA_IN_USE: NDIS_OID = 0x0001_0104;
pub const OID_GEN_MAXIMUM_LOOKAHEAD: NDIS_OID = 0x0001_0105;
pub const OID_GEN_MAXIMUM_FRAME_SIZE: NDIS_OID = 0x0001_0106;
pub const OID_GEN_LINK_SPEED: NDIS_OID = 0x0001_0107;
pub const OID_GEN_TRANSMIT_BUFFER_SPACE: NDIS_OID = 0x0001_0108;
pub const OID_GEN_RECEIVE_BUFFER_SPACE: NDIS_OID = 0x0001_0109;
pub const OID_GEN_VENDOR_ID: NDIS_OID = 0x0001_010C;
pub const OID_GEN_VENDOR_DESCRIPTION: NDIS_OID = 0x0001_010D;
pub const OID_GEN_CURRENT_PACKET_FILTER: NDIS_OID = 0x0001_010E;
pub const OID_GEN_CURRENT_LOOKAHEAD: NDIS_OID = 0x0001_010F;
pub const OID_GEN_DRIVER_VERSION: NDIS_OID = 0x0001_0110;
pub const OID_GEN_MAXIMUM_TOTAL_SIZE: NDIS_OID = 0x0001_0111;
pub const OID_GEN_MAC_OPTIONS: NDIS_OID = 0x0001_0113;
pub const OID_GEN_MEDIA_CONNECT_STATUS: NDIS_OID = 0x0001_0114;
pub const OID_GEN_MAXIMUM_SEND_PACKETS: NDIS_OID = 0x0001_0115;
pub const OID_GEN_VENDOR_DRIVER_VERSION: NDIS_OID = 0x0001_0116;
pub const OID_GEN_PHYSICAL_MEDIUM: NDIS_OID = 0x0001_0202;
pub const OID_GEN_RECEIVE_SCALE_CAPABILITIES: NDIS_OID = 0x0001_0203;
pub const OID_GEN_MAX_LINK_SPEED: NDIS_OID = 0x0001_0206;
pub const OID_GEN_LINK_STATE: NDIS_OID = 0x0001_0207;
pub const OID_GEN_LINK_PARAMETERS: NDIS_OID = 0x0001_0208;
pub const OID_GEN_MINIPORT_RESTART_ATTRIBUTES: NDIS_OID = 0x0001_021D;
pub const OID_GEN_XMIT_OK: NDIS_OID = 0x0002_0101;
pub const OID_GEN_RCV_OK: NDIS_OID = 0x0002_0102;
pub const OID_GEN_XMIT_ERROR: NDIS_OID = 0x0002_0103;
pub const OID_GEN_RCV_ERROR: NDIS_OID = 0x0002_0104;
pub const OID_GEN_RCV_NO_BUFFER: NDIS_OID = 0x0002_0105;
pub const OID_GEN_STATISTICS: NDIS_OID = 0x0002_0106;
pub const OID_802_3_PERMANENT_ADDRESS: NDIS_OID = 0x0101_0101;
pub const OID_802_3_CURRENT_ADDRESS: NDIS_OID = 0x0101_0102;
pub const OID_802_3_MULTICAST_LIST: NDIS_OID = 0x0101_0103;
pub const OID_802_3_MAXIMUM_LIST_SIZE: NDIS_OID = 0x0101_0104;

// --- WDM: IRPs and devices -------------------------------------------------
pub const IRP_MJ_CREATE: u8 = 0x00;
pub const IRP_MJ_CLOSE: u8 = 0x02;
pub const IRP_MJ_READ: u8 = 0x03;
pub const IRP_MJ_WRITE: u8 = 0x04;
pub const IRP_MJ_DEVICE_CONTROL: u8 = 0x0E;
pub const IRP_MJ_INTERNAL_DEVICE_CONTROL: u8 = 0x0F;
pub const IRP_MJ_CLEANUP: u8 = 0x12;
pub const IO_NO_INCREMENT: CCHAR = 0;
pub const IO_NETWORK_INCREMENT: CCHAR = 2;

pub const FILE_DEVICE_NETWORK: DEVICE_TYPE = 0x0000_0012;
pub const FILE_DEVICE_SECURE_OPEN: u32 = 0x0000_0100;
pub const DO_BUFFERED_IO: u32 = 0x0000_0004;
pub const DO_DIRECT_IO: u32 = 0x0000_0010;
pub const DO_DEVICE_INITIALIZING: u32 = 0x0000_0080;

pub const METHOD_BUFFERED: u32 = 0;
pub const METHOD_IN_DIRECT: u32 = 1;
pub const METHOD_OUT_DIRECT: u32 = 2;
pub const METHOD_NEITHER: u32 = 3;
pub const FILE_ANY_ACCESS: u32 = 0;
pub const FILE_READ_ACCESS: u32 = 1;
pub const FILE_WRITE_ACCESS: u32 = 2;

pub const MDL_MAPPED_TO_SYSTEM_VA: CSHORT = 0x0001;
pub const MDL_PAGES_LOCKED: CSHORT = 0x0002;
pub const MDL_SOURCE_IS_NONPAGED_POOL: CSHORT = 0x0004;
pub const MDL_PARTIAL: CSHORT = 0x0010;
pub const MDL_PARTIAL_HAS_BEEN_MAPPED: CSHORT = 0x0020;
/// `LOCK_OPERATION` values for `MmProbeAndLockPages`.
pub const IoReadAccess: u32 = 0;
pub const IoWriteAccess: u32 = 1;
pub const IoModifyAccess: u32 = 2;

// --- Kernel ------------------------------------------------------------------
pub const PASSIVE_LEVEL: KIRQL = 0;
pub const APC_LEVEL: KIRQL = 1;
pub const DISPATCH_LEVEL: KIRQL = 2;
/// `NonPagedPoolNx`.
pub const NonPagedPoolNx: POOL_TYPE = 512;
/// `PagedPool` (the verifier fixtures only: rawnic.sys allocates none).
pub const PagedPool: POOL_TYPE = 1;
/// `DelayedWorkQueue` (`WORK_QUEUE_TYPE`).
pub const DelayedWorkQueue: u32 = 1;
pub const NotificationEvent: EVENT_TYPE = 0;
pub const SynchronizationEvent: EVENT_TYPE = 1;
pub const Executive: KWAIT_REASON = 0;
pub const KernelMode: KPROCESSOR_MODE = 0;
pub const UserMode: KPROCESSOR_MODE = 1;
/// `MmCached` (`MEMORY_CACHING_TYPE`).
pub const MmCached: u32 = 1;
/// `NormalPagePriority | MdlMappingNoExecute`.
pub const NormalPagePriorityNoExecute: u32 = 16 | 0x4000_0000;

// --- Security ------------------------------------------------------------------
pub const SECURITY_DESCRIPTOR_REVISION: u32 = 1;
pub const ACL_REVISION: u32 = 2;
pub const DACL_SECURITY_INFORMATION: SECURITY_INFORMATION = 0x0000_0004;
pub const SE_DACL_PROTECTED: u16 = 0x1000;
pub const GENERIC_ALL: ACCESS_MASK = 0x1000_0000;
pub const WRITE_DAC: ACCESS_MASK = 0x0004_0000;
pub const OBJ_KERNEL_HANDLE: u32 = 0x0000_0200;
