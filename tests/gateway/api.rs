//! The HTTP/JSON API over the real services: errors name their field, gRPC codes become HTTP
//! statuses, an enterprise's whole road works, and the OpenAPI document lists every route.

use crate::support::*;
use kechuang_platform::Role;
use serde_json::json;

fn fields(body: &serde_json::Value) -> Vec<String> {
    body["field_violations"]
        .as_array()
        .map(|v| {
            v.iter()
                .map(|f| f["field"].as_str().unwrap_or_default().to_string())
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn errors_are_json_with_the_fields_that_were_wrong() {
    let stack = Stack::start().await;
    let id = credit_code("ERR000001");
    let enterprise = stack.token(Role::Enterprise, "财务·刘", Some(&id));
    let t = Some(enterprise.as_str());

    // No token, or a token that is not the platform's.
    let (status, body) = stack.http("GET", "/api/v1/demands", None, None).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (401, Some("UNAUTHENTICATED")),
        "{body}"
    );
    let (status, _) = stack
        .http("GET", "/api/v1/demands", Some("not.a.token"), None)
        .await;
    assert_eq!(status, 401);

    // Malformed JSON, a wrong type, a missing field: 400 from the gateway itself.
    let (status, body) = stack
        .http("POST", "/api/v1/demands", t, Some("nonsense"))
        .await;
    assert_eq!(
        (status, fields(&body)),
        (400, vec!["body".to_string()]),
        "{body}"
    );
    let (status, body) = stack
        .http("POST", "/api/v1/demands", t, Some("{\"title\":"))
        .await;
    assert_eq!(
        (status, fields(&body)),
        (400, vec!["title".to_string()]),
        "{body}"
    );
    let (status, body) = stack
        .http("POST", "/api/v1/enterprises", t, Some(r#"{"name": 42}"#))
        .await;
    assert_eq!(
        (status, fields(&body)),
        (400, vec!["name".to_string()]),
        "{body}"
    );
    let (status, body) = stack
        .http("POST", "/api/v1/enterprises", t, Some(r#"{"name": "x"}"#))
        .await;
    assert_eq!(
        (status, fields(&body)),
        (400, vec!["credit_code".to_string()]),
        "{body}"
    );
    let (status, body) = stack
        .http("GET", "/api/v1/demands?page_size=many", t, None)
        .await;
    assert_eq!(
        (status, fields(&body)),
        (400, vec!["page_size".to_string()]),
        "{body}"
    );

    // The service's own validation: every broken rule, as google.rpc.BadRequest named it.
    let (status, body) = stack
        .http("POST", "/api/v1/enterprises", t, Some(&json!({"name": "", "credit_code": id, "region_code": "12", "industry_chain": "造船"}).to_string()))
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("INVALID_ARGUMENT")),
        "{body}"
    );
    let got = fields(&body);
    for f in ["name", "region_code", "industry_chain"] {
        assert!(got.iter().any(|g| g == f), "{f} missing in {got:?}");
    }

    // Codes become statuses: 404, 403, 409.
    let (status, body) = stack
        .http("GET", "/api/v1/demands/no-such-demand", t, None)
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (404, Some("NOT_FOUND")),
        "{body}"
    );
    let auditor = stack.token(Role::Auditor, "审计·孙", None);
    let (status, body) = stack
        .http("POST", "/api/v1/payments", Some(&auditor), Some(&json!({"contract_id": "c", "amount_fen": 1, "paid_at": "2026-11-01T00:00:00Z", "bank_reference": "r"}).to_string()))
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (403, Some("PERMISSION_DENIED")),
        "{body}"
    );
    let register = json!({"name": "武汉冲突科技有限公司", "credit_code": id, "region_code": "420100", "industry_chain": "北斗"}).to_string();
    assert_eq!(
        stack
            .http("POST", "/api/v1/enterprises", t, Some(&register))
            .await
            .0,
        200
    );
    let (status, body) = stack
        .http("POST", "/api/v1/enterprises", t, Some(&register))
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (409, Some("ALREADY_EXISTS")),
        "{body}"
    );

    // Unknown routes are JSON 404s too.
    let (status, body) = stack.http("GET", "/api/v1/nothing", t, None).await;
    assert_eq!((status, body["code"].as_str()), (404, Some("NOT_FOUND")));
    stack.stop().await;
}

#[tokio::test]
async fn an_enterprise_gets_from_demand_to_subsidy_application_over_http() {
    let stack = Stack::start().await;
    prepare(&stack, 1_000_000).await;
    let (token, applications) = enterprise_pays(
        &stack,
        "HTTP00001",
        "焊装线焊缝经常出现气孔，返修率高",
        "高端装备",
        &[400_000],
    )
    .await;
    let (status, a) = stack
        .http(
            "GET",
            &format!("/api/v1/applications/{}", applications[0]),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(status, 200, "{a}");
    assert_eq!(a["payment_amount_fen"], 400_000 * YUAN);
    assert_eq!(a["amount_fen"], 40_000 * YUAN, "10 % of what was paid");
    assert_eq!(a["status"], "pending_review");
    assert!(!a["computation"].as_array().unwrap().is_empty());
    let (status, page) = stack
        .http(
            "GET",
            "/api/v1/applications?status=pending_review",
            Some(&token),
            None,
        )
        .await;
    assert_eq!(
        (status, page["applications"].as_array().map(Vec::len)),
        (200, Some(1)),
        "{page}"
    );
    // By kind: the enterprise's subsidy is listed; a broker's reward is not its business; a
    // kind that does not exist is named.
    let (status, page) = stack
        .http(
            "GET",
            "/api/v1/applications?kind=SUBSIDY",
            Some(&token),
            None,
        )
        .await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["applications"][0]["kind"], "SUBSIDY", "{page}");
    assert_eq!(page["applications"].as_array().map(Vec::len), Some(1));
    let (status, body) = stack
        .http(
            "GET",
            "/api/v1/applications?kind=BROKER_REWARD",
            Some(&token),
            None,
        )
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (403, Some("PERMISSION_DENIED")),
        "{body}"
    );
    let (status, body) = stack
        .http("GET", "/api/v1/applications?kind=GIFT", Some(&token), None)
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("INVALID_ARGUMENT")),
        "{body}"
    );
    assert!(
        body.to_string().contains("kind"),
        "the field is named: {body}"
    );
    let (status, demands) = stack
        .http(
            "GET",
            "/api/v1/demands?status=contracted",
            Some(&token),
            None,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(demands["demands"][0]["status"], "contracted", "{demands}");
    // What the enterprise was paired with, over HTTP too.
    let demand_id = demands["demands"][0]["id"].as_str().unwrap().to_string();
    let (status, pairings) = stack
        .http(
            "GET",
            &format!("/api/v1/demands/{demand_id}/pairings"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(status, 200, "{pairings}");
    let achievement_id = pairings["pairings"][0]["achievement_id"].as_str().unwrap();
    let (status, achievement) = stack
        .http(
            "GET",
            &format!("/api/v1/achievements/{achievement_id}"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(status, 200, "{achievement}");
    assert_eq!(achievement["id"], achievement_id);
    assert!(!achievement["title"].as_str().unwrap().is_empty());
    assert!(achievement["abstract"].is_string(), "{achievement}");
    let (status, _) = stack
        .http("GET", "/api/v1/achievements/no-such-id", Some(&token), None)
        .await;
    assert_eq!(status, 404);
    stack.stop().await;
}

#[tokio::test]
async fn the_openapi_document_describes_every_route() {
    let stack = Stack::start().await;
    let (status, doc) = stack.http("GET", "/openapi.json", None, None).await;
    assert_eq!(status, 200);
    assert_eq!(doc["openapi"], "3.1.0");
    let paths = doc["paths"].as_object().unwrap();
    assert_eq!(paths.len(), 13, "{:?}", paths.keys());
    let token = stack.token(Role::Auditor, "审计·孙", None);
    // Every documented operation is routed (a route answers with its own error, not the
    // fallback's), and every one documents its error answers.
    for (path, item) in paths {
        for (method, op) in item.as_object().unwrap() {
            let concrete = path.replace('{', "x").replace('}', "");
            let (status, body) = stack
                .http(&method.to_uppercase(), &concrete, Some(&token), Some("{}"))
                .await;
            assert_ne!(
                body["error"].as_str(),
                Some("no such resource; see /openapi.json"),
                "{method} {path}"
            );
            assert!(status < 500, "{method} {path}: {status} {body}");
            assert!(
                op["responses"]["400"].is_object() && op["responses"]["200"].is_object(),
                "{method} {path}"
            );
        }
    }
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    stack.stop().await;
}
