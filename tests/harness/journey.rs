//! DESIGN.md's flow, step by step, through the public gRPC APIs: an enterprise registers and
//! posts a demand, a manager verifies it, the sky net pushes pairings, the enterprise accepts
//! one, signs, pays, approvers approve, the fund pays the subsidy out.
//!
//! [`Journey`] holds the steps any test composes; [`welding`] is the whole flow of one demand
//! (the welding demand of a car-body maker), in two halves so a test can act in between.

use crate::{Api, YUAN, authed, wait_for};
use kechuang_platform::Role;
use kechuang_platform::events::timestamp;
use kechuang_proto::common::{ContractType, TransferMode};
use kechuang_proto::demand as dpb;
use kechuang_proto::matching as mpb;
use kechuang_proto::subsidy as spb;
use kechuang_vocabulary::credit_code_check_char;

mod fund;
pub mod welding;

pub use fund::{FUND, audit, audit_once_settled, top_up};

/// A valid unified social credit code (Wuhan) ending in `seed`.
pub fn credit_code(seed: &str) -> String {
    let body = format!("91420100{seed:0>9}");
    format!(
        "{body}{}",
        credit_code_check_char(&body).expect("a valid body")
    )
}

/// An achievement offered by a Wuhan university, for assignment or licence.
pub fn achievement(
    title: &str,
    abstract_text: &str,
    keywords: &[&str],
    chain: &str,
    price_yuan: i64,
) -> mpb::RegisterAchievementRequest {
    mpb::RegisterAchievementRequest {
        request_id: format!("ach-{title}"),
        institution: "华中科技大学".into(),
        title: title.into(),
        r#abstract: abstract_text.into(),
        keywords: keywords.iter().map(|k| k.to_string()).collect(),
        industry_chain: chain.into(),
        trl: 7,
        transfer_modes: vec![
            TransferMode::Assignment as i32,
            TransferMode::License as i32,
        ],
        asking_price_fen: price_yuan * YUAN,
        region_code: "420111".into(),
        validate_only: false,
    }
}

/// A supplier publishes `achievements`.
pub async fn publish(api: &Api, achievements: Vec<mpb::RegisterAchievementRequest>) {
    let supplier = api.token(Role::Supplier, "陈老师", None);
    for a in achievements {
        api.catalog()
            .register_achievement(authed(a, &supplier))
            .await
            .expect("achievement registered");
    }
    embedded(api).await;
}

/// Waits until the sky net has embedded the whole catalog, so that pairings rest on what
/// every achievement means, not on when the embedding worker reached it.
pub async fn embedded(api: &Api) {
    let auditor = api.token(Role::Auditor, "孙审计", None);
    wait_for("the embedding backlog to drain", || {
        let auditor = auditor.clone();
        async move {
            let status = api
                .matching()
                .get_matching_status(authed(mpb::GetMatchingStatusRequest {}, &auditor))
                .await
                .ok()?
                .into_inner();
            (status.embedding_backlog == 0).then_some(())
        }
    })
    .await;
}

/// One enterprise on the platform, with the people who act for and around it.
pub struct Journey<'a> {
    pub api: &'a Api,
    /// Tells this journey's ids apart from other journeys' on the same platform.
    pub seed: String,
    pub enterprise_id: String,
    /// The enterprise's own token.
    pub enterprise: String,
    /// A technology manager (ground net).
    pub manager: String,
    pub auditor: String,
}

impl<'a> Journey<'a> {
    /// An enterprise whose credit code ends in `seed` (unique per journey on one platform).
    pub fn new(api: &'a Api, seed: &str) -> Self {
        let enterprise_id = credit_code(seed);
        Self {
            api,
            seed: seed.into(),
            enterprise: api.token(Role::Enterprise, "刘总", Some(&enterprise_id)),
            manager: api.token(Role::TechManager, "周经理", None),
            auditor: api.token(Role::Auditor, "孙审计", None),
            enterprise_id,
        }
    }

    /// A manager registers the enterprise.
    pub async fn register(&self, name: &str, industry_chain: &str) {
        self.api
            .demands()
            .register_enterprise(authed(
                dpb::RegisterEnterpriseRequest {
                    name: name.into(),
                    credit_code: self.enterprise_id.clone(),
                    region_code: "420100".into(),
                    industry_chain: industry_chain.into(),
                },
                &self.manager,
            ))
            .await
            .expect("enterprise registered");
    }

    /// The enterprise submits `demand` (its enterprise id filled in); a manager verifies it.
    pub async fn submit_verified(&self, demand: dpb::SubmitDemandRequest) -> dpb::Demand {
        let submitted = self
            .api
            .demands()
            .submit_demand(authed(
                dpb::SubmitDemandRequest {
                    enterprise_id: self.enterprise_id.clone(),
                    ..demand
                },
                &self.enterprise,
            ))
            .await
            .expect("demand submitted")
            .into_inner();
        self.api
            .demands()
            .verify_demand(authed(
                dpb::VerifyDemandRequest {
                    demand_id: submitted.id.clone(),
                    approve: true,
                    note: "需求明确".into(),
                },
                &self.manager,
            ))
            .await
            .expect("demand verified")
            .into_inner()
    }

    /// Waits until the demand is in `want`.
    pub async fn demand_in(&self, demand_id: &str, want: dpb::DemandStatus) -> dpb::Demand {
        wait_for(&format!("demand {want:?}"), || async move {
            let d = self
                .api
                .demands()
                .get_demand(authed(
                    dpb::GetDemandRequest {
                        demand_id: demand_id.into(),
                    },
                    &self.enterprise,
                ))
                .await
                .ok()?
                .into_inner();
            (d.status == want as i32).then_some(d)
        })
        .await
    }

    /// Waits for the sky net's pairings of the demand; returns them best first.
    pub async fn pairings(&self, demand_id: &str) -> Vec<mpb::Pairing> {
        let mut pairings = wait_for("pairings", || async move {
            let page = self
                .api
                .matching()
                .list_pairings(authed(
                    mpb::ListPairingsRequest {
                        demand_id: demand_id.into(),
                        page_size: 10,
                        page_token: String::new(),
                    },
                    &self.enterprise,
                ))
                .await
                .ok()?
                .into_inner();
            (!page.pairings.is_empty()).then_some(page.pairings)
        })
        .await;
        pairings.sort_by_key(|p| p.rank);
        pairings
    }

    pub async fn achievement(&self, achievement_id: &str) -> mpb::Achievement {
        self.api
            .catalog()
            .get_achievement(authed(
                mpb::GetAchievementRequest {
                    achievement_id: achievement_id.into(),
                },
                &self.enterprise,
            ))
            .await
            .expect("the achievement")
            .into_inner()
    }

    /// The enterprise accepts the pairing (docking starts).
    pub async fn accept(&self, pairing_id: &str) {
        self.api
            .matching()
            .respond_to_pairing(authed(
                mpb::RespondToPairingRequest {
                    pairing_id: pairing_id.into(),
                    accept: true,
                    note: String::new(),
                    broker: String::new(),
                },
                &self.enterprise,
            ))
            .await
            .expect("pairing accepted");
    }

    /// Both parties sign `contract`, now (after the pairing was accepted: time is evidence).
    pub async fn sign(&self, contract: mpb::SignContractRequest) -> mpb::Contract {
        let signed_at = timestamp(chrono::Utc::now());
        self.api
            .matching()
            .sign_contract(authed(
                mpb::SignContractRequest {
                    signed_at: Some(signed_at),
                    ..contract
                },
                &self.enterprise,
            ))
            .await
            .expect("contract signed")
            .into_inner()
    }

    /// The enterprise reports a payment under the contract, made now (after the signing);
    /// retried until the contract has reached the finance net.
    pub async fn pay(
        &self,
        contract_id: &str,
        amount_fen: i64,
        bank_reference: &str,
    ) -> spb::Payment {
        let request = spb::RecordPaymentRequest {
            contract_id: contract_id.into(),
            amount_fen,
            paid_at: Some(timestamp(chrono::Utc::now())),
            bank_reference: bank_reference.into(),
        };
        wait_for("the contract to reach the finance net", || {
            let request = request.clone();
            async move {
                let answer = self
                    .api
                    .subsidy()
                    .record_payment(authed(request, &self.enterprise))
                    .await;
                answer.ok().map(|r| r.into_inner())
            }
        })
        .await
    }

    /// A registrar certifies the contract (技术合同认定登记) as `contract_type` with
    /// `certified_fen` of technical amount; retried until the contract has reached the
    /// finance net.
    pub async fn certify(
        &self,
        contract_id: &str,
        contract_type: ContractType,
        certified_fen: i64,
    ) -> spb::Registration {
        let registrar = self.api.token(Role::Registrar, "吴登记员", None);
        let request = spb::CertifyContractRequest {
            contract_id: contract_id.into(),
            registration_no: format!("REG-{contract_id}"),
            contract_type: contract_type as i32,
            certified_amount_fen: certified_fen,
            note: String::new(),
        };
        wait_for("the contract to reach the registrar", || {
            let (request, registrar) = (request.clone(), registrar.clone());
            async move {
                let answer = self
                    .api
                    .registrations()
                    .certify_contract(authed(request, &registrar))
                    .await;
                answer.ok().map(|r| r.into_inner())
            }
        })
        .await
    }

    /// `approver` (a finance approver's token) approves the application.
    pub async fn approve(&self, application_id: &str, approver: &str) -> spb::SubsidyApplication {
        self.api
            .subsidy()
            .approve_application(authed(
                spb::ApproveApplicationRequest {
                    id: application_id.into(),
                    note: "同意".into(),
                },
                approver,
            ))
            .await
            .expect("approval")
            .into_inner()
    }

    pub async fn application(&self, id: &str) -> spb::SubsidyApplication {
        self.try_application(id).await.expect("the application")
    }

    async fn try_application(&self, id: &str) -> Result<spb::SubsidyApplication, tonic::Status> {
        let request = authed(spb::GetApplicationRequest { id: id.into() }, &self.auditor);
        Ok(self
            .api
            .subsidy()
            .get_application(request)
            .await?
            .into_inner())
    }

    /// Waits until the application is in `want`.
    pub async fn application_in(
        &self,
        id: &str,
        want: spb::ApplicationStatus,
    ) -> spb::SubsidyApplication {
        wait_for(&format!("application {want:?}"), || async move {
            let a = self.try_application(id).await.ok()?;
            (a.status == want as i32).then_some(a)
        })
        .await
    }
}
