//! The ground net's part of the demo: suppliers publish, managers register enterprises and
//! verify their demands, enterprises submit them.

use super::clients::authed;
use super::data::DataSet;
use super::driver::{Demo, bar, chance, each, paced};
use kechuang_platform::events::timestamp;
use kechuang_proto::demand as dpb;
use kechuang_proto::matching as mpb;
use tonic::Code;

impl Demo<'_> {
    /// Suppliers publish their achievements in bulk (imports of 10,000).
    pub(super) async fn import_achievements(&self) -> anyhow::Result<()> {
        let Demo {
            clients,
            cast,
            seed,
            multi,
            data,
            ..
        } = *self;
        let DataSet { achievements, .. } = data;
        let pb = bar(multi, achievements.len(), "achievements imported");
        for chunk in achievements
            .chunks(10_000)
            .enumerate()
            .map(|(c, chunk)| (c * 10_000, chunk))
        {
            let (offset, chunk) = chunk;
            let records: Vec<mpb::RegisterAchievementRequest> = chunk
                .iter()
                .enumerate()
                .map(|(i, a)| a.registration(format!("demo-{seed}-ach-{}", offset + i)))
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
        Ok(())
    }

    /// Technology managers register the enterprises they visit.
    pub(super) async fn register_enterprises(&self) {
        let Demo {
            clients,
            cast,
            n,
            multi,
            data,
            ..
        } = *self;
        let DataSet { enterprises, .. } = data;
        let pb = bar(multi, enterprises.len(), "enterprises registered");
        each(
            enterprises.iter().enumerate().collect(),
            n,
            &pb,
            |(i, e)| {
                let c = clients.demand.clone();
                let token = cast.manager(i).to_string();
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
            },
        )
        .await;
    }

    /// Enterprises submit their demands: the ids the platform gave them, by demand index.
    pub(super) async fn submit_demands(&self) -> Vec<(usize, String)> {
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
        let pb = bar(multi, demands.len(), "demands submitted");
        let deadline = timestamp(chrono::Utc::now() + chrono::Duration::days(180));
        let submitted: Vec<(usize, String)> =
            each(demands.iter().enumerate().collect(), n, &pb, |(i, d)| {
                let mut c = clients.demand.clone();
                let e = &enterprises[d.enterprise];
                let token = cast.enterprise(&e.credit_code);
                let r = d.submission(e, format!("demo-{seed}-dem-{i}"), deadline);
                async move {
                    Ok(Some((
                        i,
                        c.submit_demand(authed(r, &token)).await?.into_inner().id,
                    )))
                }
            })
            .await;
        submitted
    }

    /// Technology managers verify most, reject some with a note: the verified.
    pub(super) async fn verify_demands(
        &self,
        submitted: Vec<(usize, String)>,
    ) -> Vec<(usize, String)> {
        let Demo {
            clients,
            cast,
            seed,
            n,
            multi,
            ..
        } = *self;
        let pb = bar(multi, submitted.len(), "demands verified");
        let verified: Vec<(usize, String)> = each(submitted.clone(), n, &pb, |(i, id)| {
            let c = clients.demand.clone();
            let token = cast.manager(i).to_string();
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
                    Err(s) if s.code() == Code::FailedPrecondition => {
                        Ok(approve.then_some((i, id)))
                    } // a rerun
                    Err(s) => Err(s.into()),
                }
            }
        })
        .await;
        verified
    }
}
