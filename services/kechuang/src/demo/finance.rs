//! The finance net's part of the demo: the fund topped up, payments recorded, applications
//! reviewed by one or two approvers, the saga settled.

use super::clients::authed;
use super::data::DataSet;
use super::driver::{Demo, bar, chance, each, eventually, paced};
use kechuang_platform::events::timestamp;
use kechuang_proto::fund as fpb;
use kechuang_proto::matching as mpb;
use kechuang_proto::subsidy as spb;
use std::collections::HashMap;
use std::time::{Duration, Instant};
use tonic::Code;

impl Demo<'_> {
    /// The treasury tops the fund up (idempotent on the reference).
    pub(super) async fn top_up(&self, amount_fen: i64) -> anyhow::Result<()> {
        let Demo {
            clients,
            cast,
            seed,
            ..
        } = *self;
        let mut fund = clients.fund.clone();
        fund.top_up(authed(
            fpb::TopUpRequest {
                fund_id: kechuang_vocabulary::DEFAULT_FUND_ID.into(),
                amount_fen,
                reference: format!("DEMO-TOPUP-{seed}"),
            },
            &cast.officer,
        ))
        .await?;
        Ok(())
    }

    /// Enterprises pay, in one or two instalments; each payment makes an application.
    pub(super) async fn record_payments(
        &self,
        signed: Vec<(usize, mpb::Contract)>,
    ) -> Vec<Vec<String>> {
        let Demo {
            clients,
            cast,
            seed,
            n,
            multi,
            data,
        } = *self;
        let DataSet {
            enterprises,
            demands,
            ..
        } = data;
        let pb = bar(multi, signed.len(), "payments recorded");
        // Paid now: after every contract above was signed.
        let paid_at = timestamp(chrono::Utc::now());
        let applications: Vec<Vec<String>> = each(signed, n, &pb, |(i, contract)| {
            let c = clients.subsidy.clone();
            let token = cast.enterprise(&enterprises[demands[i].enterprise].credit_code);
            let parts: Vec<i64> = if chance(seed, i, 4, 50) {
                let first = contract.amount_fen * 4 / 10;
                vec![first, contract.amount_fen - first]
            } else {
                vec![contract.amount_fen]
            };
            async move {
                let mut ids = Vec::new();
                for (k, amount) in parts.into_iter().enumerate() {
                    let r = spb::RecordPaymentRequest {
                        contract_id: contract.id.clone(),
                        amount_fen: amount,
                        paid_at: Some(paid_at),
                        bank_reference: format!("DEMO-{seed}-PAY-{i:06}-{k}"),
                    };
                    let p = eventually(|| {
                        let (mut c, r) = (c.clone(), r.clone());
                        let token = token.clone();
                        async move { c.record_payment(authed(r, &token)).await }
                    })
                    .await?;
                    ids.push(p.into_inner().application_id);
                }
                Ok(Some(ids))
            }
        })
        .await;
        applications
    }

    /// The brokers' reward applications waiting for review.
    pub(super) async fn reward_applications(&self) -> anyhow::Result<Vec<String>> {
        let waiting = all_applications(
            &mut self.clients.subsidy.clone(),
            &self.cast.auditor,
            spb::ApplicationStatus::PendingReview,
            kechuang_proto::common::ApplicationKind::BrokerReward,
        )
        .await?;
        Ok(waiting.into_iter().map(|a| a.id).collect())
    }

    /// Approvers review the queue: one approval, or two above the four-eyes threshold.
    pub(super) async fn review_applications(&self, ids: &[String]) {
        let Demo {
            clients,
            cast,
            n,
            multi,
            ..
        } = *self;
        let pb = bar(multi, ids.len(), "applications reviewed");
        each(
            ids.iter().cloned().enumerate().collect(),
            n,
            &pb,
            |(i, id)| {
                let mut c = clients.subsidy.clone();
                let (a1, a2) = cast.reviewers(i);
                let (a1, a2, auditor) = (a1.to_string(), a2.to_string(), cast.auditor.clone());
                async move {
                    let app = c
                        .get_application(authed(
                            spb::GetApplicationRequest { id: id.clone() },
                            &auditor,
                        ))
                        .await?
                        .into_inner();
                    if app.status != spb::ApplicationStatus::PendingReview as i32 {
                        return Ok(Some(()));
                    }
                    for (k, token) in [a1, a2]
                        .iter()
                        .enumerate()
                        .take(app.required_approvals.max(1) as usize)
                    {
                        let r = spb::ApproveApplicationRequest {
                            id: id.clone(),
                            note: format!("第{}审核意见：同意", k + 1),
                        };
                        let approved = paced(|| {
                            let (mut c, r) = (c.clone(), r.clone());
                            async move { c.approve_application(authed(r, token)).await }
                        })
                        .await;
                        match approved {
                            Ok(_) => {}
                            Err(s) if s.code() == Code::FailedPrecondition => {}
                            Err(s) => return Err(s.into()),
                        }
                    }
                    Ok(Some(()))
                }
            },
        )
        .await;
    }

    /// The finance net and the ledger settle: waits (five minutes at most) until no application is approved or reserved and not yet paid.
    pub(super) async fn settle(&self, ids: &[String]) -> anyhow::Result<()> {
        let Demo {
            clients,
            cast,
            multi,
            ..
        } = *self;
        let pb = bar(multi, ids.len(), "subsidies settled");
        let mut subsidy = clients.subsidy.clone();
        let until = Instant::now() + Duration::from_secs(300);
        loop {
            let counts = application_counts(&mut subsidy, &cast.auditor).await?;
            let in_flight = counts
                .get(&(spb::ApplicationStatus::Approved as i32))
                .copied()
                .unwrap_or(0)
                + counts
                    .get(&(spb::ApplicationStatus::FundsReserved as i32))
                    .copied()
                    .unwrap_or(0);
            pb.set_position((ids.len() as u64).saturating_sub(in_flight as u64));
            if in_flight == 0 || Instant::now() > until {
                break;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        pb.finish_with_message("done");
        Ok(())
    }
}

/// How many applications are in each status.
pub async fn application_counts(
    c: &mut SubsidyClient,
    token: &str,
) -> anyhow::Result<HashMap<i32, usize>> {
    let mut counts = HashMap::new();
    let every = all_applications(
        c,
        token,
        spb::ApplicationStatus::Unspecified,
        kechuang_proto::common::ApplicationKind::Unspecified,
    )
    .await?;
    for a in &every {
        *counts.entry(a.status).or_insert(0) += 1;
    }
    Ok(counts)
}

type SubsidyClient = kechuang_proto::subsidy::subsidy_service_client::SubsidyServiceClient<
    tonic::transport::Channel,
>;

/// Every application in `status` of `kind` (`Unspecified`: any), page by page.
async fn all_applications(
    c: &mut SubsidyClient,
    token: &str,
    status: spb::ApplicationStatus,
    kind: kechuang_proto::common::ApplicationKind,
) -> anyhow::Result<Vec<spb::SubsidyApplication>> {
    let mut applications = Vec::new();
    let mut page_token = String::new();
    loop {
        let page = c
            .list_applications(authed(
                spb::ListApplicationsRequest {
                    page_size: 500,
                    page_token,
                    status: status as i32,
                    enterprise_id: String::new(),
                    kind: kind as i32,
                },
                token,
            ))
            .await?
            .into_inner();
        applications.extend(page.applications);
        if page.next_page_token.is_empty() {
            return Ok(applications);
        }
        page_token = page.next_page_token;
    }
}
