//! The demo's people and catalogue: the central side, each agency with its ladder of
//! superiors, and the procedures its responsible is in charge of.

use incidencias_core::{ProcedureId, Role};

use super::{Account, Seeder};
use crate::service::{Caller, NewAgencyInput, NewProcedureInput, ServiceError};

/// The central side's people, the ones the incidents' steps need by name.
pub(super) struct Central {
    pub(super) admin: Account,
    pub(super) mesa: Account,
    pub(super) cedn: Account,
    /// Everyone created, in creation order (the order `demo` prints them in).
    pub(super) all: Vec<Account>,
}

/// One agency's side: its responsible (who acts on its incidents) and its procedures.
pub(super) struct AgencySide {
    pub(super) responsible: Account,
    pub(super) people: Vec<Account>,
    pub(super) procedures: Vec<ProcedureId>,
}

/// Three fictitious agencies: name, acronym, mail domain.
pub(super) const AGENCIES: [(&str, &str, &str); 3] = [
    ("Secretaría de Bienestar Digital", "SBD", "sbd.gob.mx"),
    ("Instituto Nacional de Trámites", "INT", "int.gob.mx"),
    ("Comisión Federal de Registros", "CFR", "cfr.gob.mx"),
];

/// The procedures of each agency of [`AGENCIES`], in the same order.
const PROCEDURE_NAMES: [&[&str]; 3] = [
    &[
        "Solicitud de apoyo para adultos mayores",
        "Constancia de inscripción al padrón",
        "Actualización de datos del beneficiario",
        "Consulta de pagos",
    ],
    &[
        "Registro de trámites en línea",
        "Cita para atención presencial",
        "Certificado de cumplimiento",
    ],
    &[
        "Inscripción en el registro federal",
        "Aviso de modificación",
        "Copia certificada de asiento",
    ],
];

impl Seeder {
    /// The administrator, the help desk and CEDN, each with a chain of superiors: the
    /// central side's escalation ladder (three levels for CEDN, two for the help desk).
    pub(super) async fn central_people(&self) -> Result<Central, ServiceError> {
        let admin = self
            .user(
                "admin@incidencias.gob.mx",
                "Administración del sistema",
                Role::Admin,
                None,
                None,
            )
            .await?;
        let mesa_jefa = self
            .user(
                "coordinacion.mesa@ugd.gob.mx",
                "Rocío Osnaya (Coordinación Mesa de ayuda)",
                Role::Helpdesk,
                None,
                None,
            )
            .await?;
        let mesa = self
            .user(
                "mesa@ugd.gob.mx",
                "Mesa de ayuda gob.mx",
                Role::Helpdesk,
                None,
                Some(&mesa_jefa),
            )
            .await?;
        let cedn_dir = self
            .user(
                "direccion.cedn@ugd.gob.mx",
                "Dirección de CEDN",
                Role::Validator,
                None,
                None,
            )
            .await?;
        let cedn_jefe = self
            .user(
                "jefatura.cedn@ugd.gob.mx",
                "Jefatura de validación CEDN",
                Role::Validator,
                None,
                Some(&cedn_dir),
            )
            .await?;
        let cedn = self
            .user(
                "validacion.cedn@ugd.gob.mx",
                "Validación CEDN",
                Role::Validator,
                None,
                Some(&cedn_jefe),
            )
            .await?;
        let all = vec![
            admin.clone(),
            mesa_jefa,
            mesa.clone(),
            cedn_dir,
            cedn_jefe,
            cedn.clone(),
        ];
        Ok(Central {
            admin,
            mesa,
            cedn,
            all,
        })
    }

    /// The `n`-th agency of [`AGENCIES`] with its people and its procedures.
    pub(super) async fn agency_side(
        &self,
        admin: &Caller,
        n: usize,
        (name, acronym, domain): (&str, &str, &str),
    ) -> Result<AgencySide, ServiceError> {
        let agency = self
            .service
            .create_agency(
                admin,
                NewAgencyInput {
                    name: name.into(),
                    acronym: acronym.into(),
                    email_domains: vec![domain.into()],
                },
            )
            .await?;
        let people = self.agency_ladder(agency.id, domain).await?;
        let responsible = people[3].clone();
        let procedures = self
            .procedures(admin, n, acronym, agency.id, &responsible)
            .await?;
        Ok(AgencySide {
            responsible,
            people,
            procedures,
        })
    }

    /// An agency's people: its responsible for procedures and three levels above, so an
    /// unanswered incident has somewhere to escalate to. Returned top down.
    async fn agency_ladder(&self, agency: i64, domain: &str) -> Result<Vec<Account>, ServiceError> {
        let a = Some(agency);
        let sub = self
            .user(
                &format!("subsecretaria@{domain}"),
                "Subsecretaría",
                Role::Agency,
                a,
                None,
            )
            .await?;
        let dg = self
            .user(
                &format!("direccion.general@{domain}"),
                "Dirección General de TI",
                Role::Agency,
                a,
                Some(&sub),
            )
            .await?;
        let dir = self
            .user(
                &format!("direccion.sistemas@{domain}"),
                "Dirección de Sistemas",
                Role::Agency,
                a,
                Some(&dg),
            )
            .await?;
        let resp = self
            .user(
                &format!("responsable@{domain}"),
                "Responsable de trámites",
                Role::Agency,
                a,
                Some(&dir),
            )
            .await?;
        Ok(vec![sub, dg, dir, resp])
    }

    /// The `n`-th agency's procedures, all in the care of its responsible. The fourth has
    /// a modality suffix (`-A`), so the homoclave parser's longer form shows up too.
    async fn procedures(
        &self,
        admin: &Caller,
        n: usize,
        acronym: &str,
        agency: i64,
        responsible: &Account,
    ) -> Result<Vec<ProcedureId>, ServiceError> {
        let mut ids = Vec::new();
        for (k, name) in PROCEDURE_NAMES[n].iter().enumerate() {
            let modality = if k == 3 { "-A" } else { "" };
            let p = self
                .service
                .create_procedure(
                    admin,
                    NewProcedureInput {
                        homoclave: format!("{acronym}-0{}-00{}{modality}", n + 1, k + 1),
                        name: (*name).into(),
                        agency_id: agency,
                        url: format!(
                            "https://www.gob.mx/tramites/{}-{}",
                            acronym.to_lowercase(),
                            k + 1
                        ),
                        responsible_id: responsible.doc.id,
                    },
                )
                .await?;
            ids.push(ProcedureId(p.id));
        }
        Ok(ids)
    }
}
