-- The four service databases and the gateway's (each also creates its own when missing).
CREATE DATABASE kc_demand;
CREATE DATABASE kc_matching;
CREATE DATABASE kc_subsidy;
CREATE DATABASE kc_ledger;
CREATE DATABASE kc_gateway;
