//! What the demo prints at the end: the funnel, the fund, the ledger's health.

use super::clients::{Cast, Clients, authed};
use super::finance::application_counts;
use kechuang_proto::demand as dpb;
use kechuang_proto::fund as fpb;
use kechuang_proto::subsidy as spb;
use std::collections::HashMap;
use std::time::{Duration, Instant};
use subsidy::domain::money::yuan;

#[derive(Debug)]
pub struct Report {
    pub demands_by_status: HashMap<i32, usize>,
    pub applications_by_status: HashMap<i32, usize>,
    pub fund: fpb::Fund,
    pub violations: Vec<String>,
    /// The finance audit trail's check, against its latest anchor on the bus.
    pub audit: spb::AuditTrailReport,
    pub matched: usize,
    pub demands: usize,
}

/// How many demands are in each status.
async fn demand_counts(clients: &Clients, cast: &Cast) -> anyhow::Result<HashMap<i32, usize>> {
    let mut demand = clients.demand.clone();
    let mut counts = HashMap::new();
    let mut page_token = String::new();
    loop {
        let page = demand
            .list_demands(authed(
                dpb::ListDemandsRequest {
                    page_size: 500,
                    page_token,
                    status: 0,
                    enterprise_id: String::new(),
                    industry_chain: String::new(),
                },
                &cast.auditor,
            ))
            .await?
            .into_inner();
        for d in &page.demands {
            *counts.entry(d.status).or_insert(0usize) += 1;
        }
        if page.next_page_token.is_empty() {
            return Ok(counts);
        }
        page_token = page.next_page_token;
    }
}

pub async fn report(
    clients: &Clients,
    cast: &Cast,
    enterprises: usize,
    demands: usize,
    (matched, verified_here): (usize, usize),
    elapsed: Duration,
) -> anyhow::Result<Report> {
    // demand-intake hears of pairings, contracts and disbursements through events, which lag
    // behind the other services under load: read until two readings a second apart agree.
    let settle_by = Instant::now() + Duration::from_secs(120);
    let mut demands_by_status = demand_counts(clients, cast).await?;
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let again = demand_counts(clients, cast).await?;
        let settled = again == demands_by_status || Instant::now() > settle_by;
        demands_by_status = again;
        if settled {
            break;
        }
    }
    let mut subsidy = clients.subsidy.clone();
    let applications_by_status = application_counts(&mut subsidy, &cast.auditor).await?;
    let mut fund_client = clients.fund.clone();
    let fund = fund_client
        .get_fund(authed(
            fpb::GetFundRequest {
                fund_id: kechuang_vocabulary::DEFAULT_FUND_ID.into(),
            },
            &cast.auditor,
        ))
        .await?
        .into_inner();
    let violations = fund_client
        .reconcile(authed(
            fpb::ReconcileRequest {
                fund_id: String::new(),
            },
            &cast.auditor,
        ))
        .await?
        .into_inner()
        .violations;
    let audit = subsidy
        .verify_audit_trail(authed(spb::VerifyAuditTrailRequest {}, &cast.auditor))
        .await?
        .into_inner();

    use dpb::DemandStatus as S;
    let count = |s: S| demands_by_status.get(&(s as i32)).copied().unwrap_or(0);
    // Everything that got at least as far as a stage counts for that stage.
    let completed = count(S::Completed);
    let contracted = count(S::Contracted) + completed;
    let docking = count(S::Docking) + contracted;
    let matching = count(S::Matching) + docking;
    let verified = count(S::Verified) + matching;
    let submitted = demands_by_status.values().sum::<usize>();
    println!();
    // The funnel counts every demand on the platform (earlier runs too); the run's own figures
    // are said as such.
    println!(
        "=== the platform's funnel, all demands (this run: {enterprises} enterprises, {demands} demands, {:.0} s) ===",
        elapsed.as_secs_f64()
    );
    let pct = |n: usize| {
        if submitted == 0 {
            0.0
        } else {
            n as f64 * 100.0 / submitted as f64
        }
    };
    for (label, n) in [
        ("submitted  已提交", submitted),
        ("verified   已审核", verified),
        ("matched    已匹配", matching),
        ("docking    对接中", docking),
        ("contracted 已签约", contracted),
        ("subsidised 已补贴", completed),
    ] {
        println!("{label:<20} {n:>8}  {:>5.1}%", pct(n));
    }
    println!("rejected by managers {:>8}", count(S::Rejected));
    println!(
        "this run: {matched} of its {verified_here} verified demands received pairings ({:.1}%)",
        if verified_here == 0 {
            0.0
        } else {
            matched as f64 * 100.0 / verified_here as f64
        }
    );
    use spb::ApplicationStatus as A;
    let a = |s: A| {
        applications_by_status
            .get(&(s as i32))
            .copied()
            .unwrap_or(0)
    };
    println!(
        "applications (subsidies and brokers' rewards): {} disbursed, {} waitlisted, {} ineligible, \
         {} pending review, {} awaiting registration, {} failed",
        a(A::Disbursed),
        a(A::Waitlisted),
        a(A::Ineligible),
        a(A::PendingReview),
        a(A::AwaitingRegistration),
        a(A::DisbursementFailed)
    );
    println!("=== fund {} ({}) ===", fund.name, fund.id);
    println!("total      {:>24}", yuan(fund.total_fen));
    println!("available  {:>24}", yuan(fund.available_fen));
    println!("reserved   {:>24}", yuan(fund.reserved_fen));
    println!("disbursed  {:>24}", yuan(fund.disbursed_fen));
    if violations.is_empty() {
        println!("reconcile: clean");
    } else {
        println!("reconcile: {} violations", violations.len());
        for v in &violations {
            println!("  - {v}");
        }
    }
    if audit.intact {
        println!(
            "audit trail: intact, {} entries, anchored on the bus up to entry {}",
            audit.entry_count, audit.anchored_sequence
        );
    } else {
        println!(
            "audit trail: NOT intact (entry {}): {}",
            audit.first_broken_sequence, audit.problem
        );
    }
    Ok(Report {
        demands_by_status,
        applications_by_status,
        fund,
        violations,
        audit,
        matched,
        demands,
    })
}
