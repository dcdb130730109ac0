//! The esiti wing: Flow 1's test results, from the lab's report to the citizen's CUN.
//!
//! | room | what |
//! |---|---|
//! | `routes` | `POST /sar/v1/esiti`, `GET /sar/v1/esiti/{id}` |
//! | `delivery` | the rules of the deliveries: to Sistema TS, the CUN by SMS and e-mail, whom to text |
//! | `store` | the `esiti` table, rows typed |

pub(crate) mod delivery;
pub(crate) mod routes;
pub(crate) mod store;
