//! The registration body's part of the demo (技术合同认定登记): most signed contracts are
//! certified, at a technical amount of 60 to 100 % of the contract (the rest is equipment and
//! materials); a few are refused as not technology contracts; a few stay waiting, so their
//! payments show AWAITING_REGISTRATION on the console.

use super::clients::authed;
use super::driver::{Demo, bar, chance, each, eventually, paced};
use kechuang_proto::common::ContractType;
use kechuang_proto::matching as mpb;
use kechuang_proto::subsidy as spb;

/// What the registrar decides on the `i`-th contract of a seed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Verdict {
    /// Certified at this many percent of the contract amount.
    Certify(i64),
    Refuse,
    Wait,
}

pub(super) fn verdict(seed: u64, i: usize) -> Verdict {
    if chance(seed, i, 31, 4) {
        Verdict::Refuse
    } else if chance(seed, i, 37, 5) {
        Verdict::Wait
    } else {
        // 60, 70, 80, 90 or 100 %.
        let step = (0..4).filter(|k| chance(seed, i, 41 + k, 50)).count() as i64;
        Verdict::Certify(60 + 10 * step)
    }
}

impl Demo<'_> {
    /// The registrar decides on each signed contract (before the payments: a registration body
    /// usually sees the contract first). Returns how many were certified and refused.
    pub(super) async fn register_contracts(
        &self,
        signed: &[(usize, mpb::Contract)],
    ) -> (usize, usize) {
        let Demo {
            clients,
            cast,
            seed,
            n,
            multi,
            ..
        } = *self;
        let pb = bar(multi, signed.len(), "contracts registered");
        let decided: Vec<Verdict> = each(signed.to_vec(), n, &pb, |(i, contract)| {
            let c = clients.registrations.clone();
            let token = cast.registrar(i).to_string();
            let v = verdict(seed, i);
            async move {
                match v {
                    Verdict::Wait => return Ok(Some(v)),
                    Verdict::Certify(percent) => {
                        let r = spb::CertifyContractRequest {
                            contract_id: contract.id.clone(),
                            registration_no: format!("DEMO{seed}-{i:06}"),
                            contract_type: ContractType::try_from(contract.contract_type)
                                .unwrap_or(ContractType::Development)
                                as i32,
                            certified_amount_fen: contract.amount_fen / 100 * percent,
                            note: format!("技术交易额按合同金额的 {percent}% 认定"),
                        };
                        eventually(|| {
                            let (c, r, token) = (c.clone(), r.clone(), token.clone());
                            async move {
                                paced(|| {
                                    let (mut c, r) = (c.clone(), r.clone());
                                    let token = token.clone();
                                    async move { c.certify_contract(authed(r, &token)).await }
                                })
                                .await
                            }
                        })
                        .await?;
                    }
                    Verdict::Refuse => {
                        let r = spb::RefuseRegistrationRequest {
                            contract_id: contract.id.clone(),
                            reason: "合同标的主要为设备采购，不属于技术合同".into(),
                        };
                        eventually(|| {
                            let (c, r, token) = (c.clone(), r.clone(), token.clone());
                            async move {
                                paced(|| {
                                    let (mut c, r) = (c.clone(), r.clone());
                                    let token = token.clone();
                                    async move { c.refuse_registration(authed(r, &token)).await }
                                })
                                .await
                            }
                        })
                        .await?;
                    }
                }
                Ok(Some(v))
            }
        })
        .await;
        let certified = decided
            .iter()
            .filter(|v| matches!(v, Verdict::Certify(_)))
            .count();
        let refused = decided.iter().filter(|v| **v == Verdict::Refuse).count();
        (certified, refused)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn most_contracts_are_certified_at_sixty_to_a_hundred_percent() {
        let verdicts: Vec<Verdict> = (0..2000).map(|i| verdict(7, i)).collect();
        let certified = verdicts
            .iter()
            .filter(|v| matches!(v, Verdict::Certify(_)))
            .count();
        let refused = verdicts.iter().filter(|v| **v == Verdict::Refuse).count();
        assert!((1700..1950).contains(&certified), "{certified}");
        assert!((30..140).contains(&refused), "{refused}");
        for v in verdicts {
            if let Verdict::Certify(p) = v {
                assert!([60, 70, 80, 90, 100].contains(&p), "{p}");
            }
        }
    }
}
