//! Integration tests of the `ecosim` binary and the ecosystem it boots.

mod certify;
mod cli;
mod clock;
mod cun;
mod dashboard;
mod dgc;
mod ecosystem;
mod immuni;
mod load;
mod openapi;
mod privileges;
mod scenarios;
mod sistema_ts;
mod sms_gateway;
mod support;
mod vaccinations;
