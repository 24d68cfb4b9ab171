-- Referrals (裂變): the program, invite codes, who invited whom, and the rewards granted.
CREATE TABLE referral_program (
    id         TEXT PRIMARY KEY,
    body       TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE TABLE referral_codes (
    user_id    TEXT PRIMARY KEY,
    code       TEXT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL
);
CREATE TABLE referrals (
    invitee     TEXT PRIMARY KEY,
    inviter     TEXT NOT NULL,
    device_id   TEXT,
    ip          TEXT,
    flags       TEXT NOT NULL,
    state       TEXT NOT NULL,
    order_id    TEXT,
    rewards     TEXT,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);
CREATE INDEX referrals_inviter ON referrals (inviter, created_at);
