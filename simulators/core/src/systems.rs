//! The systems of the ecosystem, their names and default ports.

/// One system of the simulated ecosystem.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum System {
    /// Dashboard and control plane.
    ControlPlane,
    /// Sistema Tessera Sanitaria (MEF / Sogei).
    SistemaTs,
    /// The Immuni backend.
    Immuni,
    /// Anagrafe Vaccinale Nazionale.
    Avn,
    /// Piattaforma Nazionale DGC (green pass).
    PnDgc,
    /// SMS gateway (HTTP) and e-mail (SMTP).
    SmsGateway,
    /// The reference SAR/AVR.
    Sar,
}

impl System {
    /// Every system, in port order.
    pub const ALL: [System; 7] = [
        System::ControlPlane,
        System::SistemaTs,
        System::Immuni,
        System::Avn,
        System::PnDgc,
        System::SmsGateway,
        System::Sar,
    ];

    /// The name used in the journal, URLs and data files (`sistema-ts`).
    pub fn name(self) -> &'static str {
        match self {
            System::ControlPlane => "control-plane",
            System::SistemaTs => "sistema-ts",
            System::Immuni => "immuni",
            System::Avn => "avn",
            System::PnDgc => "pn-dgc",
            System::SmsGateway => "sms-gateway",
            System::Sar => "sar",
        }
    }

    /// Offset of its HTTP port from the base port (APIS.md).
    pub fn port_offset(self) -> u16 {
        match self {
            System::ControlPlane => 0,
            System::SistemaTs => 1,
            System::Immuni => 2,
            System::Avn => 3,
            System::PnDgc => 4,
            System::SmsGateway => 5,
            System::Sar => 6,
        }
    }

    /// The system named `name`.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.name() == name)
    }
}

impl std::fmt::Display for System {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Offset of the SMTP listener from the base port.
pub const SMTP_PORT_OFFSET: u16 = 25;
