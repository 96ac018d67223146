use super::clients::{Cast, Clients, authed};
use super::data::{DataSet, Scale, generate};
use super::report::{Report, report};
use futures::StreamExt;
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use kechuang_platform::events::timestamp;
use kechuang_proto::demand as dpb;
use kechuang_proto::fund as fpb;
use kechuang_proto::matching as mpb;
use kechuang_proto::subsidy as spb;
use std::collections::HashMap;
use std::time::{Duration, Instant};
use tonic::Code;

#[derive(Debug, Clone)]
pub struct DemoOptions {
    pub scale: Scale,
    pub seed: u64,
    pub concurrency: usize,
}

/// Deterministic "coin" for actor choices: the same seed and index decide alike.
fn chance(seed: u64, index: usize, salt: u64, percent: u64) -> bool {
    let mut x = seed
        ^ (index as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
        ^ salt.wrapping_mul(0xD6E8_FEB8_6659_FD93);
    x ^= x >> 31;
    x = x.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x ^= x >> 27;
    x % 100 < percent
}

pub(crate) fn bar(multi: &MultiProgress, len: usize, label: &str) -> ProgressBar {
    let pb = multi.add(ProgressBar::new(len as u64));
    pb.set_style(
        ProgressStyle::with_template("{prefix:<22} [{bar:30}] {pos:>6}/{len:<6} {rate:>8} {msg}")
            .expect("template")
            // indicatif's own {per_sec} prints ten decimals.
            .with_key(
                "rate",
                |state: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
                    let _ = write!(w, "{:.0}/s", state.per_sec());
                },
            )
            .progress_chars("=> "),
    );
    pb.set_prefix(label.to_string());
    pb
}

/// Runs `f` over `items` with `n` in flight, ticking `pb`; returns the successes.
async fn each<T, R, F, Fut>(items: Vec<T>, n: usize, pb: &ProgressBar, f: F) -> Vec<R>
where
    F: Fn(T) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<Option<R>>>,
{
    let out: Vec<_> = futures::stream::iter(items)
        .map(|item| {
            let fut = f(item);
            async move {
                let r = fut.await;
                pb.inc(1);
                r
            }
        })
        .buffer_unordered(n)
        .collect()
        .await;
    let mut ok = Vec::new();
    let mut errors = 0;
    for r in out {
        match r {
            Ok(Some(v)) => ok.push(v),
            Ok(None) => {}
            Err(e) => {
                if errors == 0 {
                    pb.suspend(|| eprintln!("  {}: first error: {e:#}", pb.prefix()));
                }
                errors += 1;
            }
        }
    }
    pb.finish_with_message(if errors > 0 {
        format!("{errors} errors")
    } else {
        "done".into()
    });
    ok
}

/// Retries a call answered NOT_FOUND / UNAVAILABLE while an event is still on its way.
async fn eventually<T, F, Fut>(mut call: F) -> Result<T, tonic::Status>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, tonic::Status>>,
{
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut delay = Duration::from_millis(50);
    loop {
        match call().await {
            Err(s)
                if matches!(
                    s.code(),
                    Code::NotFound | Code::Unavailable | Code::FailedPrecondition
                ) && Instant::now() < deadline =>
            {
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(1));
            }
            other => return other,
        }
    }
}

/// Makes a call again after the delay the server asks for while it answers RESOURCE_EXHAUSTED:
/// the demo plays many people with one token per role, and one technology manager or approver
/// working through thousands of items goes over a caller's write rate (`KC_WRITES_PER_SECOND`).
async fn paced<T, F, Fut>(mut call: F) -> Result<T, tonic::Status>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, tonic::Status>>,
{
    loop {
        match call().await {
            Err(s) if s.code() == Code::ResourceExhausted => {
                let delay = kechuang_platform::limits::retry_delay(&s)
                    .unwrap_or(Duration::from_millis(100));
                tokio::time::sleep(delay.max(Duration::from_millis(5))).await;
            }
            other => return other,
        }
    }
}

pub async fn run(
    settings: &kechuang_platform::Settings,
    clients: Clients,
    options: DemoOptions,
) -> anyhow::Result<Report> {
    let started = Instant::now();
    let cast = Cast::new(settings)?;
    let DataSet {
        enterprises,
        demands,
        achievements,
    } = generate(options.scale, options.seed);
    let n = options.concurrency.max(1);
    let seed = options.seed;
    let multi = MultiProgress::new();
    println!(
        "kechuang demo: {} enterprises, {} demands, {} achievements, fund {} yuan (seed {seed})",
        enterprises.len(),
        demands.len(),
        achievements.len(),
        options.scale.fund_fen / 100
    );

    // The treasury tops the fund up (idempotent on the reference).
    let mut fund = clients.fund.clone();
    fund.top_up(authed(
        fpb::TopUpRequest {
            fund_id: "fund-default".into(),
            amount_fen: options.scale.fund_fen,
            reference: format!("DEMO-TOPUP-{seed}"),
        },
        &cast.officer,
    ))
    .await?;

    // The finance office puts Wuhan's own rule in force: one proposes, another approves.
    let wuhan = super::policy::wuhan_in_force(&clients, &cast).await?;
    let status = spb::PolicyStatus::try_from(wuhan.status).unwrap_or_default();
    println!(
        "policy {} v{}: proposed by {}, decided by {}: {}",
        wuhan.name,
        wuhan.version,
        wuhan.proposed_by,
        wuhan.decided_by,
        status.as_str_name()
    );

    // Suppliers publish their achievements in bulk.
    let pb = bar(&multi, achievements.len(), "achievements imported");
    for chunk in achievements
        .chunks(10_000)
        .enumerate()
        .map(|(c, chunk)| (c * 10_000, chunk))
    {
        let (offset, chunk) = chunk;
        let records: Vec<mpb::RegisterAchievementRequest> = chunk
            .iter()
            .enumerate()
            .map(|(i, a)| mpb::RegisterAchievementRequest {
                request_id: format!("demo-{seed}-ach-{}", offset + i),
                institution: a.institution.into(),
                title: a.title.clone(),
                r#abstract: a.abstract_text.clone(),
                keywords: a.keywords.clone(),
                industry_chain: a.chain.into(),
                trl: a.trl,
                transfer_modes: a.transfer_modes.iter().map(|m| *m as i32).collect(),
                asking_price_fen: a.asking_price_fen,
                region_code: a.region_code.into(),
                validate_only: false,
            })
            .collect();
        let mut catalog = clients.catalog.clone();
        let summary = catalog
            .import_achievements(authed(futures::stream::iter(records), &cast.supplier))
            .await?
            .into_inner();
        pb.inc(chunk.len() as u64);
        if !summary.errors.is_empty() {
            pb.println(format!(
                "  {} records refused, first: {:?}",
                summary.errors.len(),
                summary.errors[0]
            ));
        }
    }
    pb.finish_with_message("done");

    // Technology managers register the enterprises they visit.
    let pb = bar(&multi, enterprises.len(), "enterprises registered");
    each(enterprises.iter().collect(), n, &pb, |e| {
        let c = clients.demand.clone();
        let token = cast.manager.clone();
        async move {
            let r = dpb::RegisterEnterpriseRequest {
                name: e.name.clone(),
                credit_code: e.credit_code.clone(),
                region_code: e.region_code.clone(),
                industry_chain: e.chain.name.into(),
            };
            let registered = paced(|| {
                let (mut c, r) = (c.clone(), r.clone());
                let token = token.clone();
                async move { c.register_enterprise(authed(r, &token)).await }
            })
            .await;
            match registered {
                Ok(_) => Ok(Some(())),
                Err(s) if s.code() == Code::AlreadyExists => Ok(Some(())),
                Err(s) => Err(s.into()),
            }
        }
    })
    .await;

    // Enterprises submit demands.
    let pb = bar(&multi, demands.len(), "demands submitted");
    let deadline = timestamp(chrono::Utc::now() + chrono::Duration::days(180));
    let submitted: Vec<(usize, String)> =
        each(demands.iter().enumerate().collect(), n, &pb, |(i, d)| {
            let mut c = clients.demand.clone();
            let e = &enterprises[d.enterprise];
            let token = cast.enterprise(&e.credit_code);
            let r = dpb::SubmitDemandRequest {
                request_id: format!("demo-{seed}-dem-{i}"),
                enterprise_id: e.credit_code.clone(),
                title: d.title.clone(),
                description: d.description.clone(),
                industry_chain: d.chain.into(),
                contract_type: d.contract_type as i32,
                budget_min_fen: d.budget_min_fen,
                budget_max_fen: d.budget_max_fen,
                region_code: d.region_code.clone(),
                deadline: Some(deadline),
            };
            async move {
                Ok(Some((
                    i,
                    c.submit_demand(authed(r, &token)).await?.into_inner().id,
                )))
            }
        })
        .await;

    // Technology managers verify most, reject some with a note.
    let pb = bar(&multi, submitted.len(), "demands verified");
    let verified: Vec<(usize, String)> = each(submitted.clone(), n, &pb, |(i, id)| {
        let c = clients.demand.clone();
        let token = cast.manager.clone();
        let approve = !chance(seed, i, 1, 8);
        async move {
            let note = if approve {
                "需求清晰，同意发布".to_string()
            } else {
                "需求描述不具体，请补充技术指标".to_string()
            };
            let r = dpb::VerifyDemandRequest {
                demand_id: id.clone(),
                approve,
                note,
            };
            let verified = paced(|| {
                let (mut c, r) = (c.clone(), r.clone());
                let token = token.clone();
                async move { c.verify_demand(authed(r, &token)).await }
            })
            .await;
            match verified {
                Ok(_) if approve => Ok(Some((i, id))),
                Ok(_) => Ok(None),
                Err(s) if s.code() == Code::FailedPrecondition => Ok(approve.then_some((i, id))), // a rerun
                Err(s) => Err(s.into()),
            }
        }
    })
    .await;

    // The sky net pushes pairings; enterprises look at them and accept the best for most.
    let verified_here = verified.len();
    let pb = bar(&multi, verified.len(), "pairings received");
    let matched: Vec<(usize, String, mpb::Pairing)> = each(verified, n, &pb, |(i, id)| {
        let mut c = clients.matching.clone();
        let token = cast.enterprise(&enterprises[demands[i].enterprise].credit_code);
        async move {
            let until = Instant::now() + Duration::from_secs(60);
            loop {
                let request = mpb::ListPairingsRequest {
                    demand_id: id.clone(),
                    page_size: 10,
                    page_token: String::new(),
                };
                match c.list_pairings(authed(request, &token)).await {
                    Ok(page) => {
                        let best = page
                            .into_inner()
                            .pairings
                            .into_iter()
                            .min_by_key(|p| p.rank);
                        if let Some(best) = best {
                            return Ok(Some((i, id, best)));
                        }
                    }
                    // The sky net has not heard of the verified demand yet.
                    Err(s) if s.code() == Code::NotFound => {}
                    Err(s) => return Err(s.into()),
                }
                if Instant::now() > until {
                    return Ok(None);
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    })
    .await;

    let pb = bar(&multi, matched.len(), "pairings answered");
    let accepted: Vec<(usize, String, mpb::Pairing)> =
        each(matched.clone(), n, &pb, |(i, id, pairing)| {
            let mut c = clients.matching.clone();
            let token = cast.enterprise(&enterprises[demands[i].enterprise].credit_code);
            let accept = chance(seed, i, 2, 70);
            async move {
                let r = mpb::RespondToPairingRequest {
                    pairing_id: pairing.id.clone(),
                    accept,
                    note: String::new(),
                };
                match c.respond_to_pairing(authed(r, &token)).await {
                    Ok(p) if accept => Ok(Some((i, id, p.into_inner()))),
                    Ok(_) => Ok(None),
                    Err(s) if s.code() == Code::FailedPrecondition => {
                        Ok(accept.then_some((i, id, pairing)))
                    }
                    Err(s) => Err(s.into()),
                }
            }
        })
        .await;

    // Most dockings end in a signed technology contract.
    let pb = bar(&multi, accepted.len(), "contracts signed");
    let signed: Vec<(usize, mpb::Contract)> = each(accepted, n, &pb, |(i, _id, pairing)| {
        let mut c = clients.matching.clone();
        let d = &demands[i];
        let token = cast.enterprise(&enterprises[d.enterprise].credit_code);
        let sign = chance(seed, i, 3, 80);
        let amount = (d.budget_max_fen / 100_000 * (60 + (i as i64 % 40)) / 100).max(1) * 100_000;
        async move {
            if !sign {
                return Ok(None);
            }
            let r = mpb::SignContractRequest {
                request_id: format!("demo-{seed}-contract-{i}"),
                pairing_id: pairing.id.clone(),
                contract_no: format!("DEMO-{seed}-HT-{i:06}"),
                contract_type: d.contract_type as i32,
                amount_fen: amount,
                // Signed now: after the pairing was accepted, never before (time is evidence).
                signed_at: Some(timestamp(chrono::Utc::now())),
            };
            Ok(Some((
                i,
                c.sign_contract(authed(r, &token)).await?.into_inner(),
            )))
        }
    })
    .await;

    // Enterprises pay, in one or two instalments; each payment makes an application.
    let pb = bar(&multi, signed.len(), "payments recorded");
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

    // Approvers review the queue: one approval, or two above the four-eyes threshold.
    let ids: Vec<String> = applications.into_iter().flatten().collect();
    let pb = bar(&multi, ids.len(), "applications reviewed");
    each(ids.clone(), n, &pb, |id| {
        let mut c = clients.subsidy.clone();
        let (a1, a2, auditor) = (
            cast.approver_1.clone(),
            cast.approver_2.clone(),
            cast.auditor.clone(),
        );
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
    })
    .await;

    // The finance net and the ledger settle; wait until nothing is in flight.
    let pb = bar(&multi, ids.len(), "subsidies settled");
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
    report(
        &clients,
        &cast,
        enterprises.len(),
        demands.len(),
        (matched.len(), verified_here),
        started.elapsed(),
    )
    .await
}

/// How many applications are in each status.
pub async fn application_counts(
    c: &mut kechuang_proto::subsidy::subsidy_service_client::SubsidyServiceClient<
        tonic::transport::Channel,
    >,
    token: &str,
) -> anyhow::Result<HashMap<i32, usize>> {
    let mut counts = HashMap::new();
    let mut page_token = String::new();
    loop {
        let page = c
            .list_applications(authed(
                spb::ListApplicationsRequest {
                    page_size: 500,
                    page_token,
                    status: 0,
                    enterprise_id: String::new(),
                },
                token,
            ))
            .await?
            .into_inner();
        for a in &page.applications {
            *counts.entry(a.status).or_insert(0) += 1;
        }
        if page.next_page_token.is_empty() {
            return Ok(counts);
        }
        page_token = page.next_page_token;
    }
}
