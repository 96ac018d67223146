-- The four service databases (services also create theirs when missing).
CREATE DATABASE kc_demand;
CREATE DATABASE kc_matching;
CREATE DATABASE kc_subsidy;
CREATE DATABASE kc_ledger;
