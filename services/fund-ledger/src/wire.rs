//! Rows and domain values as the public API shows them: every conversion to protobuf here.

use crate::domain;
use crate::store::{Fund, TransferRecord};
use kechuang_platform::events::timestamp;
use kechuang_proto::fund::{self as pb, TransferKind, TransferStatus};

pub fn fund(f: &Fund) -> pb::Fund {
    pb::Fund {
        id: f.id.clone(),
        name: f.name.clone(),
        available_fen: f.balances.available,
        reserved_fen: f.balances.reserved,
        disbursed_fen: f.balances.disbursed,
        total_fen: f.balances.total(),
        low_balance_fen: f.low_balance_fen,
        create_time: Some(timestamp(f.created_at)),
    }
}

pub fn transfer(t: &TransferRecord) -> pb::Transfer {
    let kind = match domain::TransferKind::parse(&t.kind) {
        Some(domain::TransferKind::TopUp) => TransferKind::TopUp,
        Some(domain::TransferKind::Reserve) => TransferKind::Reserve,
        Some(domain::TransferKind::Post) => TransferKind::Post,
        Some(domain::TransferKind::Void) => TransferKind::Void,
        None => TransferKind::Unspecified,
    };
    let status = match (kind, t.resolution.as_deref()) {
        (TransferKind::Reserve, Some("post")) => TransferStatus::Posted,
        (TransferKind::Reserve, Some("void")) => TransferStatus::Voided,
        (TransferKind::Reserve, _) => TransferStatus::Pending,
        _ => TransferStatus::Unspecified,
    };
    pb::Transfer {
        id: t.id.to_string(),
        fund_id: t.fund_id.clone(),
        debit_account: t.debit_account.clone(),
        credit_account: t.credit_account.clone(),
        amount_fen: t.amount_fen,
        kind: kind as i32,
        pending_id: t.pending_id.map(|p| p.to_string()).unwrap_or_default(),
        reference: t.reference.clone(),
        status: status as i32,
        create_time: Some(timestamp(t.created_at)),
    }
}
