//! Every RPC checks who is calling: enterprises see only their own, auditors only read.

use crate::helpers::*;
use kechuang_platform::testing::authed;
use kechuang_proto::demand::{
    DemandStatus, GetDemandRequest, ListDemandsRequest, VerifyDemandRequest, WithdrawDemandRequest,
};
use tonic::Code;

#[tokio::test]
async fn an_enterprise_cannot_see_or_touch_another_enterprises_demand() {
    let mut g = start().await;
    let a = g.enterprise(40).await;
    let b = g.enterprise(41).await;
    let theirs = g.demand(&a, "r").await;
    let me = g.enterprise_token(&b);
    let get = |id: &str| GetDemandRequest {
        demand_id: id.into(),
    };

    let other = g
        .client
        .get_demand(authed(get(&theirs.id), &me))
        .await
        .unwrap_err();
    let unknown = g
        .client
        .get_demand(authed(get(&uuid::Uuid::now_v7().to_string()), &me))
        .await
        .unwrap_err();
    // Same code, same shape of message: existence does not leak.
    assert_eq!(
        (other.code(), unknown.code()),
        (Code::NotFound, Code::NotFound)
    );

    let status = g
        .client
        .withdraw_demand(authed(
            WithdrawDemandRequest {
                demand_id: theirs.id.clone(),
                reason: String::new(),
            },
            &me,
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);

    // Submitting in another enterprise's name answers like an unregistered enterprise.
    let status = g
        .client
        .submit_demand(authed(demand_request(&a, "mine"), &me))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);

    // Listings: only its own, and naming another enterprise finds nothing.
    g.demand(&b, "own").await;
    let list = |enterprise_id: &str| ListDemandsRequest {
        enterprise_id: enterprise_id.into(),
        ..Default::default()
    };
    let own = g
        .client
        .list_demands(authed(list(""), &me))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(own.demands.len(), 1);
    assert!(own.demands.iter().all(|d| d.enterprise_id == b));
    let none = g
        .client
        .list_demands(authed(list(&a), &me))
        .await
        .unwrap()
        .into_inner();
    assert!(none.demands.is_empty());

    assert_eq!(status_of(&g.get(&theirs.id).await), DemandStatus::Submitted);
    assert_eq!(count(&g.svc.pool, "SELECT count(*) FROM demands").await, 2);
    g.stop().await;
}

#[tokio::test]
async fn roles_enterprises_do_not_verify_auditors_do_not_write() {
    let mut g = start().await;
    let e = g.enterprise(42).await;
    let d = g.demand(&e, "r").await;
    let verify = || VerifyDemandRequest {
        demand_id: d.id.clone(),
        approve: true,
        note: String::new(),
    };
    let withdraw = || WithdrawDemandRequest {
        demand_id: d.id.clone(),
        reason: String::new(),
    };

    let owner = g.enterprise_token(&e);
    let status = g
        .client
        .verify_demand(authed(verify(), &owner))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);

    let auditor = g.auditor.clone();
    let denied = [
        g.client
            .verify_demand(authed(verify(), &auditor))
            .await
            .unwrap_err(),
        g.client
            .withdraw_demand(authed(withdraw(), &auditor))
            .await
            .unwrap_err(),
        g.client
            .submit_demand(authed(demand_request(&e, "a"), &auditor))
            .await
            .unwrap_err(),
        g.client
            .register_enterprise(authed(enterprise_request(43), &auditor))
            .await
            .unwrap_err(),
    ];
    for status in denied {
        assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
    }
    // Technology managers verify but neither submit nor withdraw for an enterprise.
    let manager = g.manager.clone();
    let status = g
        .client
        .withdraw_demand(authed(withdraw(), &manager))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);
    let status = g
        .client
        .submit_demand(authed(demand_request(&e, "m"), &manager))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);

    // Auditors and managers read everything.
    for token in [&auditor, &manager] {
        let listed = g
            .client
            .list_demands(authed(ListDemandsRequest::default(), token))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(listed.demands.len(), 1);
    }
    // Nothing was changed by the refused calls.
    let now = g.get(&d.id).await;
    assert_eq!(
        (status_of(&now), now.history.len()),
        (DemandStatus::Submitted, 1)
    );
    assert_eq!(count(&g.svc.pool, "SELECT count(*) FROM demands").await, 1);

    // No token at all.
    let status = g
        .client
        .get_demand(GetDemandRequest {
            demand_id: d.id.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    g.stop().await;
}
