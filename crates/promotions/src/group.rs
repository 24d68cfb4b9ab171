//! Group buys (拼團): a leader opens a group of `size` at the group price, others join by
//! its link within `join_hours`; when the group is full every member's order is
//! confirmed, when time runs out first the group expires and every order is cancelled.
//! A join is one store transaction with a conditional count (`members < size`) and a
//! unique member row, so any number of concurrent joins fills a group exactly.

use std::sync::Arc;

use flywheel_core::ErrorCode;
use flywheel_core::{Clock, Fen};
use flywheel_store::groups::{self as q, GroupRow, GroupState};
use flywheel_store::Store;
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// A group-buy deal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupDeal {
    /// Unique id.
    pub id: String,
    /// The product.
    pub product: String,
    /// Price per member in a full group.
    pub group_price: Fen,
    /// Members a group needs (the leader included), 2 to 100.
    pub group_size: i64,
    /// Hours a group stays open for joins, 1 to 720.
    pub join_hours: i64,
}

/// A group and its members.
#[derive(Debug, Clone, Serialize)]
pub struct Group {
    /// Group id (the share link carries it).
    pub id: String,
    /// The deal.
    pub deal_id: String,
    /// Who opened it.
    pub leader: String,
    /// Members needed.
    pub size: i64,
    /// Members, in joining order.
    pub members: Vec<String>,
    /// `open` (joinable until `expires_at`), `full` (orders confirmed), `expired` (cancelled).
    pub state: GroupState,
    /// Deadline (RFC 3339).
    pub expires_at: String,
}

fn conflict(code: ErrorCode, message: impl Into<String>) -> Error {
    Error::Conflict {
        code,
        message: message.into(),
    }
}

/// Group buys over the store.
#[derive(Clone)]
pub struct GroupBuys {
    store: Store,
    clock: Arc<dyn Clock>,
}

impl GroupBuys {
    /// Group buys over `store`, telling time by `clock`.
    pub fn new(store: Store, clock: Arc<dyn Clock>) -> GroupBuys {
        GroupBuys { store, clock }
    }

    fn now(&self) -> i64 {
        flywheel_core::time::to_millis(self.clock.now())
    }

    /// Creates a deal.
    pub async fn create_deal(&self, d: GroupDeal) -> Result<GroupDeal> {
        if d.id.trim().is_empty() || d.product.trim().is_empty() || d.group_price.0 < 0 {
            return Err(Error::invalid(
                ErrorCode::InvalidDeal,
                "a deal needs an id, a product and a price ≥ 0",
            ));
        }
        if !(2..=100).contains(&d.group_size) || !(1..=720).contains(&d.join_hours) {
            return Err(Error::invalid(
                ErrorCode::InvalidDeal,
                "group_size is 2 to 100 and join_hours 1 to 720",
            ));
        }
        let body =
            serde_json::to_string(&d).map_err(|e| Error::invalid(ErrorCode::InvalidDeal, e.to_string()))?;
        let (id, now) = (d.id.clone(), self.now());
        if !self
            .store
            .write_with(move |c| q::insert_deal(c, &id, &body, now))
            .await?
        {
            return Err(conflict(
                ErrorCode::DealExists,
                format!("deal {:?} already exists", d.id),
            ));
        }
        Ok(d)
    }

    /// Every deal.
    pub async fn deals(&self) -> Result<Vec<GroupDeal>> {
        let bodies = self.store.read_with(q::deals).await?;
        bodies
            .iter()
            .map(|b| {
                serde_json::from_str(b).map_err(|e| Error::invalid(ErrorCode::InvalidDeal, e.to_string()))
            })
            .collect()
    }

    /// Opens a group of a deal with `leader` as its first member.
    pub async fn open(&self, deal_id: &str, leader: &str) -> Result<Group> {
        if leader.trim().is_empty() {
            return Err(Error::invalid(ErrorCode::InvalidMember, "a group needs a leader"));
        }
        let now = self.now();
        let (did, leader) = (deal_id.to_owned(), leader.to_owned());
        let id = self
            .store
            .write_with(move |c| {
                let Some(body) = q::deal(c, &did)? else {
                    return Ok(None);
                };
                let deal: GroupDeal =
                    serde_json::from_str(&body).map_err(|e| flywheel_store::Error::Corrupt(e.to_string()))?;
                let g = GroupRow {
                    id: flywheel_store::new_secret("grp_")[..20].to_owned(),
                    deal_id: did.clone(),
                    leader: leader.clone(),
                    size: deal.group_size,
                    members: 1,
                    state: GroupState::Open,
                    expires_at: now + deal.join_hours * 3_600_000,
                };
                q::open_group(c, &g, now)?;
                Ok(Some(g.id))
            })
            .await?
            .ok_or_else(|| Error::NotFound(format!("deal {deal_id:?}")))?;
        self.group(&id).await
    }

    /// Joins a group: refused when it is full (`group_full`), expired (`group_expired`)
    /// or the user is in it already (`already_member`).
    pub async fn join(&self, group_id: &str, user: &str) -> Result<Group> {
        if user.trim().is_empty() {
            return Err(Error::invalid(
                ErrorCode::InvalidMember,
                "a member needs a user id",
            ));
        }
        let now = self.now();
        let (gid, user) = (group_id.to_owned(), user.to_owned());
        let outcome: std::result::Result<(), ErrorCode> = self
            .store
            .write_with(move |c| {
                let Some(g) = q::group(c, &gid)? else {
                    return Ok(Err(ErrorCode::NotFound));
                };
                if q::members(c, &gid)?.contains(&user) {
                    return Ok(Err(ErrorCode::AlreadyMember));
                }
                if !q::count_join(c, &gid, now)? {
                    return Ok(Err(if g.state == GroupState::Full || g.members >= g.size {
                        ErrorCode::GroupFull
                    } else {
                        ErrorCode::GroupExpired
                    }));
                }
                q::add_member(c, &gid, &user, now)?;
                Ok(Ok(()))
            })
            .await?;
        match outcome {
            Ok(()) => self.group(group_id).await,
            Err(ErrorCode::NotFound) => Err(Error::NotFound(format!("group {group_id:?}"))),
            Err(ErrorCode::AlreadyMember) => Err(conflict(ErrorCode::AlreadyMember, "already in this group")),
            Err(ErrorCode::GroupFull) => Err(conflict(ErrorCode::GroupFull, "the group is full")),
            Err(_) => Err(conflict(ErrorCode::GroupExpired, "the group's time ran out")),
        }
    }

    /// One group with its members.
    pub async fn group(&self, id: &str) -> Result<Group> {
        let gid = id.to_owned();
        let (g, members) = self
            .store
            .read_with(move |c| Ok(q::group(c, &gid)?.map(|g| (g, q::members(c, &gid)))))
            .await?
            .ok_or_else(|| Error::NotFound(format!("group {id:?}")))?;
        Ok(Group {
            id: g.id,
            deal_id: g.deal_id,
            leader: g.leader,
            size: g.size,
            members: members?,
            state: g.state,
            expires_at: flywheel_core::time::from_millis(g.expires_at).to_rfc3339(),
        })
    }

    /// Expires every open group past its deadline; returns their ids (their orders are cancelled).
    pub async fn expire_due(&self) -> Result<Vec<String>> {
        let now = self.now();
        let due = self.store.write_with(move |c| q::expire_due(c, now)).await?;
        Ok(due.into_iter().map(|g| g.id).collect())
    }
}
