//! `oid get|set|names`: what clap reads, and the request once checked (a
//! value given as text is encoded for the OID's type).

use super::Mistake;
use super::values::{self, Hex, Oid};
use crate::json::{self, Shape};
use clap::{Args, Subcommand};
use rawnic_client::oid::{self, OidInfo};

/// `oid`'s commands, as clap reads them.
#[derive(Debug, Subcommand)]
pub enum OidLine {
    /// Query an OID and decode its value
    ///
    /// Decodes common results: speeds, MACs, link state, strings, packet filters.
    #[command(after_long_help = json::help(&[json::OidValue::DOC]))]
    Get {
        /// A name (OID_GEN_LINK_SPEED, or GEN_LINK_SPEED) or a number (0x00010107)
        #[arg(value_name = "OID", value_parser = values::oid)]
        oid: Oid,
        /// Room for BYTES of data [default: what the adapter needs]
        #[arg(long, value_name = "BYTES", allow_negative_numbers = true, value_parser = values::oid_len)]
        len: Option<usize>,
        /// Print the data in hex, not decoded
        #[arg(long)]
        raw: bool,
    },
    /// Set an OID (the driver allows only a few; `oid names` says which)
    ///
    /// The value is given once: as VALUE (a number for ULONG OIDs, comma-separated MACs for a
    /// multicast list), or as bytes with --hex, or as a number of a given width.
    #[command(
        override_usage = "rawnicctl oid set [OPTIONS] <OID> <VALUE | --hex <HEX> | --u32 <N> | --u64 <N>>",
        after_long_help = json::help(&[json::OidSet::DOC])
    )]
    Set {
        /// A name (OID_GEN_CURRENT_LOOKAHEAD) or a number
        #[arg(value_name = "OID", value_parser = values::oid)]
        oid: Oid,
        #[command(flatten)]
        value: SetValue,
    },
    /// List the OIDs rawnicctl knows by name
    #[command(after_long_help = json::help(&[json::OidName::DOC]))]
    Names,
}

/// The value of `oid set`, given one way.
#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
pub struct SetValue {
    /// The value as text: a number, a MAC, or MACs separated by commas
    #[arg(value_name = "VALUE")]
    text: Option<String>,
    /// The value's bytes
    #[arg(long, value_name = "HEX", value_parser = values::hex)]
    hex: Option<Hex>,
    /// The value as a 32-bit number
    #[arg(long, value_name = "N", value_parser = values::u32_value)]
    u32: Option<Hex>,
    /// The value as a 64-bit number
    #[arg(long, value_name = "N", value_parser = values::u64_value)]
    u64: Option<Hex>,
}

/// `oid`, checked.
#[derive(Debug, Clone, PartialEq)]
pub enum OidArgs {
    Get { oid: u32, info: Option<&'static OidInfo>, len: Option<usize>, raw: bool },
    Set { oid: u32, value: Vec<u8> },
    Names,
}

impl OidLine {
    /// The command's name, as typed.
    pub(super) fn name(&self) -> &'static str {
        match self {
            OidLine::Get { .. } => "get",
            OidLine::Set { .. } => "set",
            OidLine::Names => "names",
        }
    }

    pub(super) fn check(self) -> Result<OidArgs, Mistake> {
        Ok(match self {
            OidLine::Get { oid, len, raw } => OidArgs::Get { oid: oid.oid, info: oid.info, len, raw },
            OidLine::Set { oid, value } => {
                let bytes = match value {
                    SetValue { text: Some(t), .. } => {
                        let kind = oid.info.map_or(oid::Kind::Bytes, |i| i.kind);
                        oid::encode(kind, &t).map_err(|e| {
                            Mistake::invalid(format!("the value for {}: {e}", oid::display_oid(oid.oid)))
                        })?
                    }
                    SetValue { hex: Some(b), .. } | SetValue { u32: Some(b), .. } | SetValue { u64: Some(b), .. } => {
                        b.0
                    }
                    SetValue { text: None, hex: None, u32: None, u64: None } => {
                        return Err(Mistake::missing("what value? give VALUE, --hex HEX, --u32 N or --u64 N"));
                    }
                };
                OidArgs::Set { oid: oid.oid, value: bytes }
            }
            OidLine::Names => OidArgs::Names,
        })
    }
}
