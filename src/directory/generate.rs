//! A deterministic synthetic organisation: the same seed and size give the same export, byte
//! for byte. One CEO at the root; division executives with assistants; departments whose
//! heads, directors and managers sit at the levels their span of control puts them; skewed
//! divisions, countries and tags; a few terminated and on-leave workers. Tests, the bundled
//! sample and the benchmarks all use it.

use std::io::Write;

use chrono::{Duration, NaiveDate};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::{AttrType, Attribute, Schema};

/// One generated worker, as the export's columns hold it.
#[derive(Debug, Clone)]
pub struct Worker {
    pub id: String,
    pub first_name: String,
    pub last_name: String,
    pub email: String,
    pub manager_id: Option<String>,
    pub division: String,
    pub department: String,
    pub cost_center: Option<String>,
    pub country: String,
    pub location: String,
    pub title: String,
    pub management_level: String,
    pub job_level: u32,
    pub worker_type: String,
    pub status: String,
    pub hire_date: NaiveDate,
    pub termination_date: Option<NaiveDate>,
    pub fte: f64,
    pub tags: Vec<String>,
    pub remote: bool,
}

/// The columns of a generated export: (attribute name, column, type).
pub const COLUMNS: &[(&str, &str, AttrType)] = &[
    ("worker_id", "Employee_ID", AttrType::String),
    ("first_name", "Legal_First_Name", AttrType::String),
    ("last_name", "Legal_Last_Name", AttrType::String),
    ("email", "Work_Email", AttrType::String),
    ("manager_id", "Manager_Employee_ID", AttrType::String),
    ("division", "Division", AttrType::String),
    ("department", "Department", AttrType::String),
    ("cost_center", "Cost_Center", AttrType::String),
    ("country", "Country_ISO", AttrType::String),
    ("location", "Location", AttrType::String),
    ("title", "Business_Title", AttrType::String),
    ("management_level", "Management_Level", AttrType::String),
    ("job_level", "Job_Level", AttrType::Number),
    ("worker_type", "Worker_Type", AttrType::String),
    ("status", "Worker_Status", AttrType::String),
    ("hire_date", "Hire_Date", AttrType::Date),
    ("termination_date", "Termination_Date", AttrType::Date),
    ("fte", "FTE", AttrType::Number),
    ("tags", "Tags", AttrType::List),
    ("remote", "Remote_Worker", AttrType::Bool),
];

/// The schema of a generated export, with the roles the sample config gives.
pub fn schema() -> Schema {
    let attrs = COLUMNS
        .iter()
        .map(|(name, column, ty)| Attribute {
            name: (*name).to_string(),
            ty: *ty,
            column: (*column).to_string(),
            separator: ";".to_string(),
            date_format: None,
        })
        .collect();
    Schema::new(attrs, "worker_id", "email", Some("manager_id"))
        .unwrap_or_else(|| unreachable!("COLUMNS holds the role attributes"))
}

/// The last day of the generated history; hire and termination dates lie before it.
pub fn reference_date() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 11, 1).unwrap_or_default()
}

const DIVISIONS: &[(&str, f64, &[&str], &str)] = &[
    (
        "Engineering",
        0.32,
        &[
            "Engineering Platform",
            "Engineering Infrastructure",
            "Engineering Frontend",
            "Engineering Data",
            "Engineering Mobile",
            "Engineering Quality",
        ],
        "Software Engineer",
    ),
    (
        "Sales",
        0.20,
        &[
            "Enterprise Sales",
            "Commercial Sales",
            "Sales Engineering",
            "Sales Operations",
            "Channel Sales",
        ],
        "Account Executive",
    ),
    (
        "Customer Success",
        0.10,
        &[
            "Support",
            "Customer Success Management",
            "Professional Services",
        ],
        "Support Engineer",
    ),
    (
        "Marketing",
        0.08,
        &[
            "Demand Generation",
            "Product Marketing",
            "Brand",
            "Communications",
        ],
        "Marketing Manager",
    ),
    (
        "Product",
        0.07,
        &["Product Management", "Product Design", "User Research"],
        "Product Manager",
    ),
    (
        "Finance",
        0.05,
        &["Accounting", "FP&A", "Tax", "Treasury"],
        "Financial Analyst",
    ),
    (
        "Operations",
        0.05,
        &["Business Operations", "Workplace", "Procurement"],
        "Operations Analyst",
    ),
    (
        "People",
        0.04,
        &["Recruiting", "People Operations", "Learning"],
        "People Partner",
    ),
    (
        "Security",
        0.03,
        &[
            "Security Operations",
            "Application Security",
            "Corporate Security",
            "Security Compliance",
        ],
        "Security Engineer",
    ),
    (
        "IT",
        0.03,
        &["IT Operations", "Enterprise Applications", "Help Desk"],
        "IT Engineer",
    ),
    ("Legal", 0.03, &["Legal", "Privacy", "Contracts"], "Counsel"),
];

const EXEC_TITLES: &[&str] = &[
    "Chief Technology Officer",
    "Chief Revenue Officer",
    "Chief Customer Officer",
    "Chief Marketing Officer",
    "Chief Product Officer",
    "Chief Financial Officer",
    "Chief Operating Officer",
    "Chief People Officer",
    "Chief Information Security Officer",
    "Chief Information Officer",
    "General Counsel",
];

const COUNTRIES: &[(&str, f64, &[&str])] = &[
    (
        "US",
        0.42,
        &[
            "San Francisco",
            "New York",
            "Austin",
            "Seattle",
            "Remote - US",
        ],
    ),
    ("GB", 0.10, &["London", "Manchester"]),
    ("IN", 0.08, &["Bengaluru", "Pune"]),
    ("DE", 0.07, &["Berlin", "Munich"]),
    ("CA", 0.06, &["Toronto", "Vancouver"]),
    ("NL", 0.05, &["Amsterdam"]),
    ("IE", 0.04, &["Dublin"]),
    ("FR", 0.04, &["Paris"]),
    ("AU", 0.04, &["Sydney", "Melbourne"]),
    ("JP", 0.03, &["Tokyo"]),
    ("BR", 0.03, &["Sao Paulo"]),
    ("SG", 0.02, &["Singapore"]),
    ("ES", 0.02, &["Madrid", "Barcelona"]),
];

const TAGS: &[(&str, f64)] = &[
    ("dog-owner", 0.08),
    ("erg-women", 0.06),
    ("mentor", 0.05),
    ("cat-owner", 0.04),
    ("erg-pride", 0.04),
    ("hiring-committee", 0.04),
    ("first-aid", 0.03),
    ("toastmasters", 0.02),
];

const FIRST_NAMES: &[&str] = &[
    "Ada", "Alan", "Alice", "Amara", "Ana", "Andrei", "Anika", "Arjun", "Ben", "Bianca", "Carlos",
    "Chen", "Chloe", "Daniel", "Dmitri", "Elena", "Emma", "Farah", "Felix", "Grace", "Hana",
    "Hugo", "Ines", "Isaac", "Jane", "Jonas", "Julia", "Kai", "Kenji", "Lara", "Leo", "Lina",
    "Lucas", "Maya", "Mei", "Mohammed", "Nadia", "Noah", "Olga", "Omar", "Priya", "Rafael", "Rosa",
    "Sam", "Sara", "Sofia", "Tariq", "Theo", "Uma", "Victor", "Wei", "Yara", "Yusuf", "Zoe",
    "Ravi", "Ingrid", "Pablo", "Aisha", "Liam", "Nora",
];

const LAST_NAMES: &[&str] = &[
    "Abe",
    "Adams",
    "Ahmed",
    "Alvarez",
    "Andersen",
    "Bauer",
    "Becker",
    "Bianchi",
    "Brown",
    "Campbell",
    "Chen",
    "Costa",
    "Dubois",
    "Evans",
    "Fischer",
    "Garcia",
    "Gupta",
    "Hansen",
    "Hughes",
    "Ito",
    "Jansen",
    "Johnson",
    "Kaur",
    "Kim",
    "Kowalski",
    "Kumar",
    "Larsen",
    "Lee",
    "Lopez",
    "Martin",
    "Meyer",
    "Moreau",
    "Murphy",
    "Nakamura",
    "Nguyen",
    "Novak",
    "Okafor",
    "Olsen",
    "Patel",
    "Perez",
    "Petrov",
    "Quinn",
    "Rossi",
    "Santos",
    "Sato",
    "Schmidt",
    "Silva",
    "Singh",
    "Smith",
    "Sousa",
    "Tanaka",
    "Taylor",
    "Walsh",
    "Wang",
    "Weber",
    "Williams",
    "Wilson",
    "Wong",
    "Yamamoto",
    "Zhang",
    "Rahman",
    "Osei",
    "Haddad",
    "Moreno",
    "Ivanova",
    "Lindqvist",
    "Byrne",
    "Fernandes",
    "Duarte",
    "Mensah",
];

/// Generates `n` workers (at least 50) from `seed`.
pub fn generate(n: usize, seed: u64) -> Vec<Worker> {
    let mut g = Generator {
        rng: ChaCha8Rng::seed_from_u64(seed),
        out: Vec::with_capacity(n),
        emails: std::collections::HashMap::new(),
    };
    g.organisation(n.max(50));
    g.assign_ids();
    g.out
}

struct Generator {
    rng: ChaCha8Rng,
    out: Vec<Worker>,
    emails: std::collections::HashMap<String, u32>,
}

/// Where in the org a new worker sits.
struct Seat<'a> {
    manager: Option<usize>,
    division: &'a str,
    department: &'a str,
    cost_center: Option<String>,
    country: Option<&'a str>,
}

impl Generator {
    fn organisation(&mut self, n: usize) {
        let ceo_seat = Seat {
            manager: None,
            division: "Executive",
            department: "Office of the CEO",
            cost_center: Some("CC-1000".into()),
            country: Some("US"),
        };
        let ceo = self.person(
            &ceo_seat,
            "Chief Executive Officer",
            "1 - Chief Executive",
            11,
        );
        self.assistant(ceo, "Executive", "Office of the CEO");
        let fixed = 2 + 2 * DIVISIONS.len();
        let rest = n.saturating_sub(fixed);
        for (d, (division, weight, departments, ic_title)) in DIVISIONS.iter().enumerate() {
            let seat = Seat {
                manager: Some(ceo),
                division,
                department: "Office of the Executive",
                cost_center: Some(format!("CC-{}00", d + 2)),
                country: Some("US"),
            };
            let exec = self.person(&seat, EXEC_TITLES[d], "2 - Executive", 10);
            self.assistant(exec, "Executive", "Office of the Executive");
            let share = if d + 1 == DIVISIONS.len() {
                rest.saturating_sub(self.out.len().saturating_sub(fixed))
            } else {
                (rest as f64 * weight / 0.99).round() as usize
            };
            self.division(exec, d, division, departments, ic_title, share);
            if self.out.len() >= n {
                break;
            }
        }
        self.out.truncate(n);
        for w in &mut self.out {
            if w.manager_id
                .as_deref()
                .and_then(|m| m.parse::<usize>().ok())
                .is_some_and(|m| m >= n)
            {
                w.manager_id = None;
            }
        }
    }

    fn division(
        &mut self,
        exec: usize,
        d: usize,
        division: &str,
        departments: &[&str],
        ic_title: &str,
        headcount: usize,
    ) {
        // Departments get skewed shares: the first is the largest.
        let weights: Vec<f64> = (0..departments.len())
            .map(|i| 1.0 / (i as f64 + 1.5))
            .collect();
        let total: f64 = weights.iter().sum();
        let mut left = headcount;
        for (i, department) in departments.iter().enumerate() {
            let size = if i + 1 == departments.len() {
                left
            } else {
                ((headcount as f64 * weights[i] / total).round() as usize).min(left)
            };
            left -= size;
            if size == 0 {
                continue;
            }
            let seat = Seat {
                manager: Some(exec),
                division,
                department,
                cost_center: Some(format!("CC-{}{:02}", d + 2, i + 1)),
                country: None,
            };
            self.unit(&seat, ic_title, size, 0);
        }
    }

    /// A unit of `size` people: a leader and, below them, teams or individual contributors.
    fn unit(&mut self, seat: &Seat<'_>, ic_title: &str, size: usize, depth: usize) {
        let reports = size - 1;
        let (title, level, job_level) = leader_title(seat.department, size, depth);
        if reports == 0 {
            self.individual(seat, ic_title);
            return;
        }
        let leader = self.person(seat, &title, level, job_level);
        let country = self.out[leader].country.clone();
        let country = COUNTRIES.iter().find(|c| c.0 == country).map(|c| c.0);
        let below = Seat {
            manager: Some(leader),
            division: seat.division,
            department: seat.department,
            cost_center: seat.cost_center.clone(),
            country,
        };
        if reports <= 9 {
            for _ in 0..reports {
                self.individual(&below, ic_title);
            }
            return;
        }
        let teams = reports.div_ceil(8).min(8);
        let base = reports / teams;
        for t in 0..teams {
            let team_size = base + usize::from(t < reports % teams);
            self.unit(&below, ic_title, team_size, depth + 1);
        }
    }

    fn individual(&mut self, seat: &Seat<'_>, ic_title: &str) -> usize {
        let seniority = self.rng.random_range(0..10u32);
        let (prefix, job_level) = match seniority {
            0..=3 => ("", 3),
            4..=6 => ("Senior ", 4),
            7..=8 => ("Staff ", 5),
            _ => ("Principal ", 6),
        };
        let w = self.person(
            seat,
            &format!("{prefix}{ic_title}"),
            "6 - Individual Contributor",
            job_level,
        );
        let roll: f64 = self.rng.random();
        let worker = &mut self.out[w];
        if roll < 0.03 {
            worker.worker_type = "Intern".into();
            worker.title = format!("{ic_title} Intern");
            worker.job_level = 1;
        } else if roll < 0.15 {
            worker.worker_type = "Contractor".into();
        }
        let status: f64 = self.rng.random();
        if status < 0.05 {
            let days = self.rng.random_range(1..120);
            let worker = &mut self.out[w];
            worker.status = "Terminated".into();
            worker.termination_date = Some(reference_date() - Duration::days(days));
        } else if status < 0.07 {
            self.out[w].status = "Leave of Absence".into();
        }
        if seat.division == "Engineering" && self.rng.random::<f64>() < 0.3 {
            self.out[w].tags.push("oncall".into());
        }
        if seat.division == "Engineering" && self.rng.random::<f64>() < 0.04 {
            self.out[w].tags.push("security-champion".into());
        }
        w
    }

    fn assistant(&mut self, exec: usize, division: &str, department: &str) {
        let seat = Seat {
            manager: Some(exec),
            division,
            department,
            cost_center: self.out[exec].cost_center.clone(),
            country: Some("US"),
        };
        self.person(
            &seat,
            "Executive Assistant",
            "6 - Individual Contributor",
            4,
        );
    }

    /// Adds a worker at `seat`; returns their index (their provisional id).
    fn person(&mut self, seat: &Seat<'_>, title: &str, level: &str, job_level: u32) -> usize {
        let first = FIRST_NAMES[self.rng.random_range(0..FIRST_NAMES.len())];
        let last = LAST_NAMES[self.rng.random_range(0..LAST_NAMES.len())];
        let email = self.email(first, last);
        let country = match seat.country {
            Some(c) if self.rng.random::<f64>() < 0.8 => c,
            _ => pick(&mut self.rng, COUNTRIES, |c| c.1).0,
        };
        let cities = COUNTRIES
            .iter()
            .find(|c| c.0 == country)
            .map_or(&["Remote"][..], |c| c.2);
        let location = cities[self.rng.random_range(0..cities.len())].to_string();
        // Recent hires dominate: growth companies hire more each year.
        let span =
            (reference_date() - NaiveDate::from_ymd_opt(2012, 1, 1).unwrap_or_default()).num_days();
        let back = (span as f64 * self.rng.random::<f64>().powf(1.8)) as i64;
        let mut tags = Vec::new();
        for (tag, p) in TAGS {
            if self.rng.random::<f64>() < *p {
                tags.push((*tag).to_string());
            }
        }
        let fte_roll: f64 = self.rng.random();
        let cost_center = seat
            .cost_center
            .clone()
            .filter(|_| self.rng.random::<f64>() > 0.005);
        let worker = Worker {
            id: self.out.len().to_string(),
            first_name: first.to_string(),
            last_name: last.to_string(),
            email,
            manager_id: seat.manager.map(|m| m.to_string()),
            division: seat.division.to_string(),
            department: seat.department.to_string(),
            cost_center,
            country: country.to_string(),
            location: location.clone(),
            title: title.to_string(),
            management_level: level.to_string(),
            job_level,
            worker_type: "Employee".into(),
            status: "Active".into(),
            hire_date: reference_date() - Duration::days(back),
            termination_date: None,
            fte: if fte_roll < 0.95 {
                1.0
            } else if fte_roll < 0.98 {
                0.8
            } else {
                0.5
            },
            tags,
            remote: location.starts_with("Remote") || self.rng.random::<f64>() < 0.2,
        };
        self.out.push(worker);
        self.out.len() - 1
    }

    fn email(&mut self, first: &str, last: &str) -> String {
        let base = format!("{}.{}", first.to_lowercase(), last.to_lowercase());
        let n = self.emails.entry(base.clone()).or_insert(0);
        *n += 1;
        if *n == 1 {
            format!("{base}@example.com")
        } else {
            format!("{base}{n}@example.com")
        }
    }

    /// Replaces provisional ids with shuffled `E` numbers (the CEO keeps `E000001`) and
    /// orders the export by id, as HR systems do: managers come both before and after their
    /// reports.
    fn assign_ids(&mut self) {
        let n = self.out.len();
        let mut numbers: Vec<usize> = (2..=n).collect();
        numbers.shuffle(&mut self.rng);
        numbers.insert(0, 1);
        let width = n.to_string().len().max(6);
        let ids: Vec<String> = numbers.iter().map(|k| format!("E{k:0width$}")).collect();
        for w in &mut self.out {
            if let Some(m) = w.manager_id.as_ref().and_then(|m| m.parse::<usize>().ok()) {
                w.manager_id = Some(ids[m].clone());
            }
        }
        for (w, id) in self.out.iter_mut().zip(ids) {
            w.id = id;
        }
        self.out.sort_by(|a, b| a.id.cmp(&b.id));
    }
}

fn leader_title(department: &str, size: usize, depth: usize) -> (String, &'static str, u32) {
    match depth {
        0 if size >= 150 => (format!("VP, {department}"), "3 - Vice President", 9),
        0 => (format!("Director, {department}"), "4 - Director", 8),
        _ if size > 10 => (format!("Senior Manager, {department}"), "5 - Manager", 7),
        _ => (format!("Manager, {department}"), "5 - Manager", 6),
    }
}

fn pick<'a, T>(rng: &mut ChaCha8Rng, items: &'a [T], weight: impl Fn(&T) -> f64) -> &'a T {
    let total: f64 = items.iter().map(&weight).sum();
    let mut roll = rng.random::<f64>() * total;
    for item in items {
        roll -= weight(item);
        if roll <= 0.0 {
            return item;
        }
    }
    &items[items.len() - 1]
}

impl Worker {
    /// The worker's fields in [`COLUMNS`] order, as text; `None` is empty.
    pub fn fields(&self) -> Vec<Option<String>> {
        vec![
            Some(self.id.clone()),
            Some(self.first_name.clone()),
            Some(self.last_name.clone()),
            Some(self.email.clone()),
            self.manager_id.clone(),
            Some(self.division.clone()),
            Some(self.department.clone()),
            self.cost_center.clone(),
            Some(self.country.clone()),
            Some(self.location.clone()),
            Some(self.title.clone()),
            Some(self.management_level.clone()),
            Some(self.job_level.to_string()),
            Some(self.worker_type.clone()),
            Some(self.status.clone()),
            Some(self.hire_date.to_string()),
            self.termination_date.map(|d| d.to_string()),
            Some(format!("{:.1}", self.fte)),
            (!self.tags.is_empty()).then(|| self.tags.join(";")),
            Some(if self.remote { "Yes" } else { "No" }.to_string()),
        ]
    }
}

/// Writes the workers as CSV with [`COLUMNS`] as the header.
pub fn write_csv(workers: &[Worker], out: impl Write) -> std::io::Result<()> {
    let mut w = csv::Writer::from_writer(out);
    w.write_record(COLUMNS.iter().map(|c| c.1))?;
    for worker in workers {
        w.write_record(worker.fields().iter().map(|f| f.as_deref().unwrap_or("")))?;
    }
    w.flush()
}

/// Writes the workers as a Workday RaaS JSON report: `{"Report_Entry": [...]}`, empty fields
/// left out as Workday does, and multi-valued fields as lists.
pub fn write_workday_json(workers: &[Worker], mut out: impl Write) -> std::io::Result<()> {
    out.write_all(b"{\"Report_Entry\":[\n")?;
    for (i, worker) in workers.iter().enumerate() {
        let mut entry = serde_json::Map::new();
        for ((name, column, _), value) in COLUMNS.iter().zip(worker.fields()) {
            let Some(value) = value else { continue };
            let json = if *name == "tags" {
                serde_json::Value::from(worker.tags.clone())
            } else {
                serde_json::Value::from(value)
            };
            entry.insert((*column).to_string(), json);
        }
        if i > 0 {
            out.write_all(b",\n")?;
        }
        serde_json::to_writer(&mut out, &entry)?;
    }
    out.write_all(b"\n]}\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_export_and_one_root() {
        let a = generate(2_000, 7);
        let b = generate(2_000, 7);
        let (mut x, mut y) = (Vec::new(), Vec::new());
        write_csv(&a, &mut x).unwrap();
        write_csv(&b, &mut y).unwrap();
        assert_eq!(x, y);
        assert_eq!(a.len(), 2_000);
        let roots: Vec<_> = a.iter().filter(|w| w.manager_id.is_none()).collect();
        assert_eq!(roots.len(), 1, "exactly one root");
        assert_eq!(roots[0].id, "E000001");
        let ids: std::collections::HashSet<_> = a.iter().map(|w| w.id.as_str()).collect();
        assert_eq!(ids.len(), a.len(), "ids are unique");
        assert!(a
            .iter()
            .all(|w| w.manager_id.as_deref().is_none_or(|m| ids.contains(m))));
    }

    #[test]
    fn different_seeds_differ() {
        let a = generate(500, 1);
        let b = generate(500, 2);
        assert_ne!(
            a.iter().map(|w| &w.email).collect::<Vec<_>>(),
            b.iter().map(|w| &w.email).collect::<Vec<_>>()
        );
    }

    #[test]
    fn managers_have_reports_and_ics_do_not() {
        let a = generate(5_000, 3);
        let managers: std::collections::HashSet<&str> =
            a.iter().filter_map(|w| w.manager_id.as_deref()).collect();
        for w in &a {
            if w.management_level.starts_with('6') && w.title != "Executive Assistant" {
                assert!(
                    !managers.contains(w.id.as_str()),
                    "{} is an IC with reports",
                    w.id
                );
            }
        }
        let engineering = a.iter().filter(|w| w.division == "Engineering").count();
        let legal = a.iter().filter(|w| w.division == "Legal").count();
        assert!(
            engineering > 5 * legal,
            "divisions are skewed: {engineering} vs {legal}"
        );
    }
}
