//! The service's operations: authorise, validate, then one transaction each. The state change
//! and the event it emits commit together (transactional outbox).

use crate::domain::status::{self, Command};
use crate::domain::{Status, access, validate};
use crate::group_commit::GroupCommit;
use crate::store::{self, DemandRow, Filter, Move};
use crate::submission::{self, Submission};
use crate::{PRODUCER, wire};
use chrono::Utc;
use kechuang_platform::error::{Error, Violations};
use kechuang_platform::{Caller, NewEvent, outbox, paging};
use kechuang_proto::demand::{
    Demand, DemandStatus, Enterprise, GetDemandRequest, GetEnterpriseRequest, ListDemandsRequest,
    ListDemandsResponse, ListEnterprisesRequest, ListEnterprisesResponse,
    RegisterEnterpriseRequest, SubmitDemandRequest, VerifyDemandRequest, WithdrawDemandRequest,
};
use kechuang_proto::events::envelope::Payload;
use kechuang_proto::events::{
    DemandRejected, DemandVerified, DemandWithdrawn, EnterpriseRegistered,
};
use kechuang_vocabulary::is_industry_chain;
use sqlx::PgPool;
use uuid::Uuid;

#[derive(Clone)]
pub struct Intake {
    pool: PgPool,
    writer: GroupCommit,
}

/// A demand id that cannot exist is answered like one that does not.
fn demand_id(id: &str) -> Result<Uuid, Error> {
    let mut v = Violations::new();
    validate::demand_id(&mut v, id);
    v.into_result()?;
    Uuid::parse_str(id).map_err(|_| access::hidden("demand", id))
}

/// An event of `row`'s chain at its current version.
fn demand_event(row: &DemandRow, payload: Payload) -> NewEvent {
    NewEvent {
        correlation_id: Some(row.correlation_id.clone()),
        ..NewEvent::new(row.id.to_string(), row.version, payload)
    }
}

impl Intake {
    pub fn new(pool: PgPool, writer: GroupCommit) -> Self {
        Self { pool, writer }
    }

    pub async fn register_enterprise(
        &self,
        caller: &Caller,
        req: RegisterEnterpriseRequest,
    ) -> Result<Enterprise, Error> {
        access::register_enterprise(caller, &req.credit_code)?;
        let new = validate::enterprise(&req)?;
        let mut tx = self.pool.begin().await?;
        let row = store::insert_enterprise(&mut tx, &new, &caller.subject).await?;
        let payload = Payload::EnterpriseRegistered(EnterpriseRegistered {
            enterprise_id: row.id.clone(),
            name: row.name.clone(),
            credit_code: row.credit_code.clone(),
            region_code: row.region_code.clone(),
            industry_chain: row.industry_chain.clone(),
        });
        outbox::append(&mut tx, PRODUCER, NewEvent::new(row.id.clone(), 1, payload)).await?;
        outbox::commit(tx, crate::PRODUCER).await?;
        Ok(wire::enterprise(&row))
    }

    pub async fn get_enterprise(
        &self,
        caller: &Caller,
        req: GetEnterpriseRequest,
    ) -> Result<Enterprise, Error> {
        access::read(caller)?;
        let mut v = Violations::new();
        v.check(
            !req.enterprise_id.is_empty(),
            "enterprise_id",
            "is required",
        );
        v.into_result()?;
        let mut conn = self.pool.acquire().await?;
        store::enterprise(&mut conn, &req.enterprise_id)
            .await?
            .filter(|e| access::sees(caller, &e.id))
            .map(|e| wire::enterprise(&e))
            .ok_or_else(|| access::hidden("enterprise", &req.enterprise_id))
    }

    pub async fn list_enterprises(
        &self,
        caller: &Caller,
        req: ListEnterprisesRequest,
    ) -> Result<ListEnterprisesResponse, Error> {
        crate::enterprises::list(&self.pool, caller, req).await
    }

    pub async fn submit_demand(
        &self,
        caller: &Caller,
        req: SubmitDemandRequest,
    ) -> Result<Demand, Error> {
        access::submit(caller, &req.enterprise_id)?;
        let submission = Submission {
            subject: caller.subject.clone(),
            request: req,
            received: Utc::now(),
        };
        submission::submit(&self.pool, &self.writer, &submission).await
    }

    pub async fn get_demand(
        &self,
        caller: &Caller,
        req: GetDemandRequest,
    ) -> Result<Demand, Error> {
        access::read(caller)?;
        let id = demand_id(&req.demand_id)?;
        let mut conn = self.pool.acquire().await?;
        let row = store::demand(&mut conn, id)
            .await?
            .filter(|d| access::sees(caller, &d.enterprise_id))
            .ok_or_else(|| access::hidden("demand", &req.demand_id))?;
        let history = store::history(&mut conn, &row).await?;
        wire::demand(&row, &history)
    }

    pub async fn list_demands(
        &self,
        caller: &Caller,
        req: ListDemandsRequest,
    ) -> Result<ListDemandsResponse, Error> {
        access::read(caller)?;
        let mut v = Violations::new();
        let status = match DemandStatus::try_from(req.status) {
            Ok(DemandStatus::Unspecified) => None,
            Ok(s) => Status::from_wire(s),
            Err(_) => {
                v.add("status", format!("{} is not a demand status", req.status));
                None
            }
        };
        v.check_with(
            req.industry_chain.is_empty() || is_industry_chain(&req.industry_chain),
            "industry_chain",
            || {
                format!(
                    "{:?} is not in the catalog of industry chains",
                    req.industry_chain
                )
            },
        );
        let limit = match paging::page_size(req.page_size) {
            Ok(n) => n,
            Err(_) => {
                v.add("page_size", "must not be negative");
                0
            }
        };
        v.into_result()?;
        let requested = Some(req.enterprise_id.clone()).filter(|e| !e.is_empty());
        let enterprise_id = match (access::list_scope(caller), requested) {
            // Another enterprise's demands are simply not there for an enterprise caller.
            (Some(own), Some(other)) if own != other => return Ok(ListDemandsResponse::default()),
            (Some(own), _) => Some(own.to_string()),
            (None, requested) => requested,
        };
        let filter = Filter {
            status,
            enterprise_id,
            industry_chain: Some(req.industry_chain.clone()).filter(|c| !c.is_empty()),
        };
        let query = format!(
            "status={};enterprise={};chain={}",
            filter.status.map_or("", Status::as_str),
            filter.enterprise_id.as_deref().unwrap_or(""),
            filter.industry_chain.as_deref().unwrap_or(""),
        );
        let after = paging::decode_token::<String>(&query, &req.page_token)?
            .map(|id| {
                Uuid::parse_str(&id).map_err(|_| {
                    Error::invalid("page_token", "is not a token this listing returned")
                })
            })
            .transpose()?;
        let mut conn = self.pool.acquire().await?;
        let mut rows = store::list_demands(&mut conn, &filter, after, limit + 1).await?;
        let next_page_token = if rows.len() as i64 > limit {
            rows.truncate(limit as usize);
            rows.last()
                .map(|last| paging::encode_token(&query, &last.id.to_string()))
                .unwrap_or_default()
        } else {
            String::new()
        };
        Ok(ListDemandsResponse {
            demands: rows
                .iter()
                .map(|r| wire::demand(r, &[]))
                .collect::<Result<_, _>>()?,
            next_page_token,
        })
    }

    pub async fn verify_demand(
        &self,
        caller: &Caller,
        req: VerifyDemandRequest,
    ) -> Result<Demand, Error> {
        access::verify(caller)?;
        validate::verification(&req)?;
        let command = Command::Verify {
            approve: req.approve,
        };
        let note = req.note.trim();
        self.change(caller, &req.demand_id, command, note, |row| {
            if req.approve {
                Payload::DemandVerified(DemandVerified {
                    demand: Some(wire::details(row)),
                    verified_by: caller.subject.clone(),
                    note: note.to_string(),
                })
            } else {
                Payload::DemandRejected(DemandRejected {
                    demand_id: row.id.to_string(),
                    enterprise_id: row.enterprise_id.clone(),
                    rejected_by: caller.subject.clone(),
                    note: note.to_string(),
                })
            }
        })
        .await
    }

    pub async fn withdraw_demand(
        &self,
        caller: &Caller,
        req: WithdrawDemandRequest,
    ) -> Result<Demand, Error> {
        access::withdraw(caller)?;
        validate::withdrawal(&req)?;
        let reason = req.reason.trim();
        self.change(caller, &req.demand_id, Command::Withdraw, reason, |row| {
            Payload::DemandWithdrawn(DemandWithdrawn {
                demand_id: row.id.to_string(),
                enterprise_id: row.enterprise_id.clone(),
                reason: reason.to_string(),
            })
        })
        .await
    }

    /// Carries out a person's command on a demand, under its row lock, and emits the event.
    async fn change(
        &self,
        caller: &Caller,
        demand: &str,
        command: Command,
        note: &str,
        payload: impl FnOnce(&DemandRow) -> Payload,
    ) -> Result<Demand, Error> {
        let id = demand_id(demand)?;
        let mut tx = self.pool.begin().await?;
        let withdrawing = matches!(command, Command::Withdraw);
        let row = store::lock_demand(&mut tx, id)
            .await?
            .filter(|d| {
                // A manager verifies any demand; only its owner (or the service) withdraws it.
                if withdrawing {
                    access::acts_for(caller, &d.enterprise_id)
                } else {
                    access::sees(caller, &d.enterprise_id)
                }
            })
            .ok_or_else(|| access::hidden("demand", demand))?;
        let from = row.status()?;
        let to =
            status::decide(from, command).map_err(|r| Error::FailedPrecondition(r.to_string()))?;
        let moved = Move {
            from,
            to,
            actor: &caller.subject,
            cause_event_id: None,
            note,
        };
        let row = store::move_status(&mut tx, id, &moved).await?;
        outbox::append(&mut tx, PRODUCER, demand_event(&row, payload(&row))).await?;
        let history = store::history(&mut tx, &row).await?;
        outbox::commit(tx, crate::PRODUCER).await?;
        wire::demand(&row, &history)
    }
}
