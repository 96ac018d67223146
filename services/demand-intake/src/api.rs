//! The gRPC door: who is calling, then the operation. Errors map to statuses in one place
//! (`kechuang_platform::error`).

use crate::intake::Intake;
use kechuang_platform::auth::caller;
use kechuang_proto::demand::demand_service_server::DemandService;
use kechuang_proto::demand::{
    Demand, Enterprise, GetDemandRequest, GetEnterpriseRequest, ListDemandsRequest,
    ListDemandsResponse, ListEnterprisesRequest, ListEnterprisesResponse,
    RegisterEnterpriseRequest, SubmitDemandRequest, VerifyDemandRequest, WithdrawDemandRequest,
};
use tonic::{Request, Response, Status};

#[derive(Clone)]
pub struct DemandApi {
    intake: Intake,
}

impl DemandApi {
    pub fn new(intake: Intake) -> Self {
        Self { intake }
    }
}

#[tonic::async_trait]
impl DemandService for DemandApi {
    #[tracing::instrument(skip_all)]
    async fn register_enterprise(
        &self,
        request: Request<RegisterEnterpriseRequest>,
    ) -> Result<Response<Enterprise>, Status> {
        let caller = caller(&request)?;
        let out = self
            .intake
            .register_enterprise(&caller, request.into_inner())
            .await?;
        Ok(Response::new(out))
    }

    #[tracing::instrument(skip_all)]
    async fn get_enterprise(
        &self,
        request: Request<GetEnterpriseRequest>,
    ) -> Result<Response<Enterprise>, Status> {
        let caller = caller(&request)?;
        let out = self
            .intake
            .get_enterprise(&caller, request.into_inner())
            .await?;
        Ok(Response::new(out))
    }

    #[tracing::instrument(skip_all)]
    async fn list_enterprises(
        &self,
        request: Request<ListEnterprisesRequest>,
    ) -> Result<Response<ListEnterprisesResponse>, Status> {
        let caller = caller(&request)?;
        let out = self
            .intake
            .list_enterprises(&caller, request.into_inner())
            .await?;
        Ok(Response::new(out))
    }

    #[tracing::instrument(skip_all)]
    async fn submit_demand(
        &self,
        request: Request<SubmitDemandRequest>,
    ) -> Result<Response<Demand>, Status> {
        let caller = caller(&request)?;
        let out = self
            .intake
            .submit_demand(&caller, request.into_inner())
            .await?;
        Ok(Response::new(out))
    }

    #[tracing::instrument(skip_all)]
    async fn get_demand(
        &self,
        request: Request<GetDemandRequest>,
    ) -> Result<Response<Demand>, Status> {
        let caller = caller(&request)?;
        let out = self
            .intake
            .get_demand(&caller, request.into_inner())
            .await?;
        Ok(Response::new(out))
    }

    #[tracing::instrument(skip_all)]
    async fn list_demands(
        &self,
        request: Request<ListDemandsRequest>,
    ) -> Result<Response<ListDemandsResponse>, Status> {
        let caller = caller(&request)?;
        let out = self
            .intake
            .list_demands(&caller, request.into_inner())
            .await?;
        Ok(Response::new(out))
    }

    #[tracing::instrument(skip_all)]
    async fn verify_demand(
        &self,
        request: Request<VerifyDemandRequest>,
    ) -> Result<Response<Demand>, Status> {
        let caller = caller(&request)?;
        let out = self
            .intake
            .verify_demand(&caller, request.into_inner())
            .await?;
        Ok(Response::new(out))
    }

    #[tracing::instrument(skip_all)]
    async fn withdraw_demand(
        &self,
        request: Request<WithdrawDemandRequest>,
    ) -> Result<Response<Demand>, Status> {
        let caller = caller(&request)?;
        let out = self
            .intake
            .withdraw_demand(&caller, request.into_inner())
            .await?;
        Ok(Response::new(out))
    }
}
