use crate::helpers::*;
use kechuang_platform::testing::authed;
use kechuang_proto::demand::{Demand, DemandStatus, ListDemandsRequest, SubmitDemandRequest};
use tonic::Code;

fn key(d: &Demand) -> (i64, i32, String) {
    let t = d.create_time.as_ref().unwrap();
    (t.seconds, t.nanos, d.id.clone())
}

#[tokio::test]
async fn pages_walk_every_demand_once_newest_first_and_filters_narrow() {
    let mut g = start().await;
    let a = g.enterprise(50).await;
    let b = g.enterprise(51).await;
    for i in 0..5 {
        g.demand(&a, &format!("a-{i}")).await;
    }
    let b_token = g.enterprise_token(&b);
    for i in 0..2 {
        let request = SubmitDemandRequest {
            industry_chain: "光电子信息".into(),
            ..demand_request(&b, &format!("b-{i}"))
        };
        g.client
            .submit_demand(authed(request, &b_token))
            .await
            .unwrap();
    }
    let verified = g.verified_demand(&a, "a-v").await;

    let operator = g.operator.clone();
    let mut seen = Vec::new();
    let mut token = String::new();
    let mut pages = 0;
    loop {
        let page = g
            .client
            .list_demands(authed(
                ListDemandsRequest {
                    page_size: 3,
                    page_token: token.clone(),
                    ..Default::default()
                },
                &operator,
            ))
            .await
            .unwrap()
            .into_inner();
        pages += 1;
        assert!(page.demands.len() <= 3);
        assert!(page.demands.iter().all(|d| d.history.is_empty()));
        seen.extend(page.demands);
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!((seen.len(), pages), (8, 3));
    let keys: Vec<_> = seen.iter().map(key).collect();
    let mut sorted = keys.clone();
    sorted.sort_by(|x, y| y.cmp(x));
    sorted.dedup();
    assert_eq!(keys, sorted, "newest first, each once");
    assert_eq!(seen[0].id, verified.id);

    let list = |r: ListDemandsRequest| authed(r, &operator);
    let by_enterprise = g
        .client
        .list_demands(list(ListDemandsRequest {
            enterprise_id: b.clone(),
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(by_enterprise.demands.len(), 2);
    let by_chain = g
        .client
        .list_demands(list(ListDemandsRequest {
            industry_chain: "光电子信息".into(),
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    assert!(by_chain.demands.len() == 2 && by_chain.demands.iter().all(|d| d.enterprise_id == b));
    let by_status = g
        .client
        .list_demands(list(ListDemandsRequest {
            status: DemandStatus::Verified as i32,
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(by_status.demands.len(), 1);
    assert_eq!(by_status.demands[0].id, verified.id);

    // A token only continues the listing it came from.
    let first = g
        .client
        .list_demands(list(ListDemandsRequest {
            page_size: 1,
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    let status = g
        .client
        .list_demands(list(ListDemandsRequest {
            page_size: 1,
            page_token: first.next_page_token.clone(),
            enterprise_id: a.clone(),
            ..Default::default()
        }))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(fields(&status), vec!["page_token"]);

    for (bad, field) in [
        (
            ListDemandsRequest {
                page_size: -1,
                ..Default::default()
            },
            "page_size",
        ),
        (
            ListDemandsRequest {
                page_token: "garbage".into(),
                ..Default::default()
            },
            "page_token",
        ),
        (
            ListDemandsRequest {
                status: 99,
                ..Default::default()
            },
            "status",
        ),
        (
            ListDemandsRequest {
                industry_chain: "房地产".into(),
                ..Default::default()
            },
            "industry_chain",
        ),
    ] {
        let status = g.client.list_demands(list(bad)).await.unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument);
        assert_eq!(fields(&status), vec![field]);
    }
    // A huge page size is capped, not refused.
    let all = g
        .client
        .list_demands(list(ListDemandsRequest {
            page_size: i32::MAX,
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(all.demands.len(), 8);
    g.stop().await;
}
