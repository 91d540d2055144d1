-- Store, processor and node names may not hold characters that do not show or that move the
-- text around them: controls (C0, DEL, C1), format characters (byte order mark, zero-width
-- spaces and joiners, direction marks, overrides and isolates, soft hyphen) and the line and
-- paragraph separators. A right-to-left override in a node name spoofed `depot nodes`; a
-- leading byte order mark made two names look the same. The same set as NameCharacters.swift.
-- Rows written before this migration are left as they are; a rename must pass.

-- The characters refused, as a regular expression bracket expression.
CREATE FUNCTION depot.name_refused_characters() RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT '[\u0001-\u001F\u007F-\u009F\u00AD\u0600-\u0605\u061C\u06DD\u070F\u180E\u200B-\u200F\u2028-\u202E\u2060-\u2064\u2066-\u206F\uFEFF\uFFF9-\uFFFB]'
$$;

-- Why `name` cannot be a name, naming its first refused character by code point (and by name
-- for the usual ones); NULL when it can.
CREATE FUNCTION depot.name_character_problem(name text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN bad IS NULL THEN NULL ELSE format(
        'holds U+%s%s at character %s; names may not hold control, invisible or text-direction characters',
        lpad(upper(to_hex(ascii(bad))), 4, '0'),
        coalesce(' (' || CASE ascii(bad)
            WHEN 7 THEN 'BELL' WHEN 9 THEN 'TAB' WHEN 10 THEN 'LINE FEED' WHEN 13 THEN 'CARRIAGE RETURN'
            WHEN 27 THEN 'ESCAPE' WHEN 127 THEN 'DELETE' WHEN 173 THEN 'SOFT HYPHEN'
            WHEN 8203 THEN 'ZERO WIDTH SPACE' WHEN 8204 THEN 'ZERO WIDTH NON-JOINER' WHEN 8205 THEN 'ZERO WIDTH JOINER'
            WHEN 8206 THEN 'LEFT-TO-RIGHT MARK' WHEN 8207 THEN 'RIGHT-TO-LEFT MARK'
            WHEN 8232 THEN 'LINE SEPARATOR' WHEN 8233 THEN 'PARAGRAPH SEPARATOR'
            WHEN 8234 THEN 'LEFT-TO-RIGHT EMBEDDING' WHEN 8235 THEN 'RIGHT-TO-LEFT EMBEDDING'
            WHEN 8236 THEN 'POP DIRECTIONAL FORMATTING' WHEN 8237 THEN 'LEFT-TO-RIGHT OVERRIDE'
            WHEN 8238 THEN 'RIGHT-TO-LEFT OVERRIDE' WHEN 8294 THEN 'LEFT-TO-RIGHT ISOLATE'
            WHEN 8295 THEN 'RIGHT-TO-LEFT ISOLATE' WHEN 8296 THEN 'FIRST STRONG ISOLATE'
            WHEN 8297 THEN 'POP DIRECTIONAL ISOLATE' WHEN 65279 THEN 'BYTE ORDER MARK'
            END || ')', ''),
        strpos(name, bad))
    END
    FROM (SELECT substring(name FROM depot.name_refused_characters()) AS bad) AS found
$$;

CREATE FUNCTION depot.name_characters_check() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    problem text := depot.name_character_problem(NEW.name);
BEGIN
    IF problem IS NOT NULL THEN
        -- The name is echoed with its refused characters as "?", so the error cannot spoof either.
        PERFORM depot.refuse(TG_TABLE_NAME, 'name',
            format('"%s" %s', regexp_replace(NEW.name, depot.name_refused_characters(), '?', 'g'), problem),
            'use letters, digits, spaces and visible punctuation');
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER stores_name_characters BEFORE INSERT OR UPDATE OF name ON depot.stores
    FOR EACH ROW EXECUTE FUNCTION depot.name_characters_check();
CREATE TRIGGER processors_name_characters BEFORE INSERT OR UPDATE OF name ON depot.processors
    FOR EACH ROW EXECUTE FUNCTION depot.name_characters_check();
CREATE TRIGGER nodes_name_characters BEFORE INSERT OR UPDATE OF name ON depot.nodes
    FOR EACH ROW EXECUTE FUNCTION depot.name_characters_check();

-- The endpoint decides which message headers go to it: NULL (the default) lets every message
-- header pass but those the row's headers set and the connection's own (Host, hop-by-hop);
-- an array lets only the names it lists pass (compared without case), '{}' none.
ALTER TABLE depot.endpoints ADD COLUMN message_headers text[];
COMMENT ON COLUMN depot.endpoints.message_headers IS
    'message headers that may go to this endpoint (case-insensitive); NULL: all but those the row sets, Host and hop-by-hop fields';
