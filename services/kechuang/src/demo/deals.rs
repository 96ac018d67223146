//! The sky net's part of the demo: pairings arrive, enterprises answer them, dockings end in
//! contracts.

use super::clients::authed;
use super::data::DataSet;
use super::driver::{Demo, bar, chance, each};
use kechuang_platform::events::timestamp;
use kechuang_proto::matching as mpb;
use std::time::{Duration, Instant};
use tonic::Code;

/// The brokers enterprises name in the demo.
const BROKERS: [&str; 5] = ["钱", "孙", "吴", "郑", "冯"];

impl Demo<'_> {
    /// The sky net pushes pairings; each enterprise looks for its best one.
    pub(super) async fn receive_pairings(
        &self,
        verified: Vec<(usize, String)>,
    ) -> Vec<(usize, String, mpb::Pairing)> {
        let Demo {
            clients,
            cast,
            n,
            multi,
            data,
            ..
        } = *self;
        let DataSet {
            enterprises,
            demands,
            ..
        } = data;
        // Each demand: the best-ranked pairing, once the sky net has proposed any.
        let pb = bar(multi, verified.len(), "pairings received");
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
        matched
    }

    /// Enterprises accept the best pairing for most demands, decline the rest.
    pub(super) async fn answer_pairings(
        &self,
        matched: &[(usize, String, mpb::Pairing)],
    ) -> Vec<(usize, String, mpb::Pairing)> {
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
        let pb = bar(multi, matched.len(), "pairings answered");
        let accepted: Vec<(usize, String, mpb::Pairing)> =
            each(matched.to_vec(), n, &pb, |(i, id, pairing)| {
                let mut c = clients.matching.clone();
                let token = cast.enterprise(&enterprises[demands[i].enterprise].credit_code);
                let accept = chance(seed, i, 2, 70);
                // A third of the deals were brokered by a technology broker the enterprise
                // names; the rest by the technology manager who verified the demand.
                let broker = if accept && chance(seed, i, 3, 33) {
                    format!("技术经纪人·{}", BROKERS[i % BROKERS.len()])
                } else {
                    String::new()
                };
                async move {
                    let r = mpb::RespondToPairingRequest {
                        pairing_id: pairing.id.clone(),
                        accept,
                        note: String::new(),
                        broker,
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
        accepted
    }

    /// Most dockings end in a signed technology contract.
    pub(super) async fn sign_contracts(
        &self,
        accepted: Vec<(usize, String, mpb::Pairing)>,
    ) -> Vec<(usize, mpb::Contract)> {
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
        let pb = bar(multi, accepted.len(), "contracts signed");
        let signed: Vec<(usize, mpb::Contract)> = each(accepted, n, &pb, |(i, _id, pairing)| {
            let mut c = clients.matching.clone();
            let d = &demands[i];
            let token = cast.enterprise(&enterprises[d.enterprise].credit_code);
            let sign = chance(seed, i, 3, 80);
            let amount =
                (d.budget_max_fen / 100_000 * (60 + (i as i64 % 40)) / 100).max(1) * 100_000;
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
        signed
    }
}
