-- Telemetry store of the cloud sink (docs/cloud.md, Schema). Plain PostgreSQL (>= 12), every table
-- partitioned by range of the bridge's wall clock ("wall"), one partition per UTC day, made by the
-- sink on demand (bms_partition_for). Idempotency: a record is identified by (site, pack, seq);
-- a resent record is byte-identical, so it carries the same wall time and the primary key
-- (which must include the partition key) rejects it: INSERT ... ON CONFLICT DO NOTHING.
-- "stamp_s" is the measurement time in seconds on the BMS clock (simulated time in simulation).

CREATE TABLE IF NOT EXISTS cell_frames (
    site text NOT NULL, pack text NOT NULL, seq bigint NOT NULL, wall timestamptz NOT NULL,
    stamp_s double precision,
    modules smallint NOT NULL, cells_per_module smallint NOT NULL, sensors_per_module smallint NOT NULL,
    module_stamp_s double precision[] NOT NULL,   -- per module; NULL where the frame has no sample
    module_seq bigint[] NOT NULL,                 -- CellMeasurements.sequence per module, -1 = none
    module_flags bigint[] NOT NULL,
    voltages_v real[] NOT NULL,                   -- module-major, NaN = unknown
    temperatures_degc real[] NOT NULL,
    PRIMARY KEY (site, pack, seq, wall)
) PARTITION BY RANGE (wall);

CREATE TABLE IF NOT EXISTS pack_summaries (
    site text NOT NULL, pack text NOT NULL, seq bigint NOT NULL, wall timestamptz NOT NULL,
    stamp_s double precision,
    state text, safety_level text,
    pack_voltage_v real, pack_current_a real, pack_soc real,
    min_cell_v real, max_cell_v real, min_temp_degc real, max_temp_degc real,
    body jsonb NOT NULL,
    PRIMARY KEY (site, pack, seq, wall)
) PARTITION BY RANGE (wall);

CREATE TABLE IF NOT EXISTS estimates (
    site text NOT NULL, pack text NOT NULL, seq bigint NOT NULL, wall timestamptz NOT NULL,
    stamp_s double precision,
    soc real[], soh real[], capacity_ah real[], resistance_ohm real[], pack_soc real, pack_soh real,
    PRIMARY KEY (site, pack, seq, wall)
) PARTITION BY RANGE (wall);

CREATE TABLE IF NOT EXISTS limits (
    site text NOT NULL, pack text NOT NULL, seq bigint NOT NULL, wall timestamptz NOT NULL,
    stamp_s double precision,
    max_charge_current_a real, max_discharge_current_a real, body jsonb NOT NULL,
    PRIMARY KEY (site, pack, seq, wall)
) PARTITION BY RANGE (wall);

-- Events (type: safety_level, fault_raised, fault_cleared, operating_state, contactors, gap,
-- command) and birth messages (type: birth).
CREATE TABLE IF NOT EXISTS events (
    site text NOT NULL, pack text NOT NULL, seq bigint NOT NULL, wall timestamptz NOT NULL,
    stamp_s double precision, type text NOT NULL, body jsonb NOT NULL,
    PRIMARY KEY (site, pack, seq, wall)
) PARTITION BY RANGE (wall);

-- Payloads the sink could not read: kept (and acknowledged when they name a pack and sequence)
-- so that nothing disappears silently.
CREATE TABLE IF NOT EXISTS rejected_records (
    received timestamptz NOT NULL DEFAULT now(), topic text NOT NULL, error text NOT NULL, payload bytea NOT NULL
);
