//! A withdrawn achievement is never paired again, on any replica, after a restart too; a
//! pairing proposed before cannot be accepted; only its supplier (or a manager) withdraws it.

use crate::helpers::*;
use kechuang_platform::error::field_violations;
use kechuang_platform::testing::{TestService, authed};
use kechuang_platform::{Role, ServiceKind};
use kechuang_proto::matching::{RespondToPairingRequest, WithdrawAchievementRequest};
use tonic::Code;

fn withdrawal(id: &str, reason: &str) -> WithdrawAchievementRequest {
    WithdrawAchievementRequest {
        achievement_id: id.into(),
        reason: reason.into(),
    }
}

async fn withdraw(
    svc: &TestService,
    req: WithdrawAchievementRequest,
    token: &str,
) -> Result<kechuang_proto::matching::Achievement, tonic::Status> {
    catalog(svc)
        .await
        .withdraw_achievement(authed(req, token))
        .await
        .map(|r| r.into_inner())
}

#[tokio::test]
async fn a_withdrawn_achievement_is_never_paired_again_on_any_replica_or_after_a_restart() {
    let a = start().await;
    for x in unrelated() {
        register(&a, x).await;
    }
    let welding_id = register(&a, welding()).await.id;
    // A second replica, started before the withdrawal: it hears of it by notification.
    let b =
        TestService::start_with(a.settings.clone(), ServiceKind::Matching, matching::build).await;

    let someone_else = a.token(Role::Supplier, "another.supplier", None);
    let refused = withdraw(&a, withdrawal(&welding_id, "不是我的"), &someone_else)
        .await
        .unwrap_err();
    // Another supplier's achievement answers as an unknown one.
    assert_eq!(refused.code(), Code::NotFound);
    let unknown = withdraw(&a, withdrawal("no-such-id", "已转让"), &supplier(&a))
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), Code::NotFound);
    let bad = withdraw(&a, withdrawal(&welding_id, ""), &supplier(&a))
        .await
        .unwrap_err();
    assert_eq!(bad.code(), Code::InvalidArgument);
    assert_eq!(field_violations(&bad)[0].0, "reason");

    let gone = withdraw(
        &a,
        withdrawal(&welding_id, "专利已独占许可给他人"),
        &supplier(&a),
    )
    .await
    .expect("the supplier withdraws its achievement");
    assert!(gone.withdraw_time.is_some());
    assert_eq!(gone.withdraw_reason, "专利已独占许可给他人");
    // Withdrawing again changes nothing.
    let again = withdraw(&a, withdrawal(&welding_id, "另一个理由"), &supplier(&a))
        .await
        .unwrap();
    assert_eq!(again.withdraw_reason, gone.withdraw_reason);

    let demands: Vec<String> = (0..4).map(|i| format!("d-w{i}")).collect();
    for d in &demands {
        let cause = a.publish(verified(welding_demand(d, ENTERPRISE))).await;
        processed(&a, &cause).await;
        assert!(
            list(&a, d)
                .await
                .iter()
                .all(|p| p.achievement_id != welding_id),
            "{d} was paired with the withdrawn achievement"
        );
    }
    b.halt().await;
    let settings = a.halt().await;
    let a = TestService::start_with(settings, ServiceKind::Matching, matching::build).await;
    let cause = a
        .publish(verified(welding_demand("d-after", ENTERPRISE)))
        .await;
    processed(&a, &cause).await;
    assert!(
        list(&a, "d-after")
            .await
            .iter()
            .all(|p| p.achievement_id != welding_id)
    );
    a.stop().await;
}

#[tokio::test]
async fn a_pairing_proposed_before_the_withdrawal_can_be_declined_not_accepted() {
    let svc = start().await;
    let welding_id = register(&svc, welding()).await.id;
    let cause = svc
        .publish(verified(welding_demand("d-1", ENTERPRISE)))
        .await;
    processed(&svc, &cause).await;
    let pairing = list(&svc, "d-1").await.remove(0);
    assert_eq!(pairing.achievement_id, welding_id);
    let manager = svc.token(Role::TechManager, "tm.zhao", None);
    withdraw(&svc, withdrawal(&welding_id, "成果已失效"), &manager)
        .await
        .expect("a technology manager may withdraw any achievement");
    let answer = |accept| RespondToPairingRequest {
        pairing_id: pairing.id.clone(),
        accept,
        note: String::new(),
        broker: String::new(),
    };
    let refused = matching(&svc)
        .await
        .respond_to_pairing(authed(answer(true), &enterprise(&svc)))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition);
    matching(&svc)
        .await
        .respond_to_pairing(authed(answer(false), &enterprise(&svc)))
        .await
        .expect("declining stays possible");
    svc.stop().await;
}
