// @ts-check
/** One call: metadata, the recording, the transcript as a conversation, links to the raw documents. */
import { callPath, el, getJson, replace, yesNo } from './dom.js';

/** Labels for the metadata document's fields, in the document's order. */
const LABELS = {
  call_id: 'Call id',
  room_name: 'Room',
  call_direction: 'Direction',
  inbound_trunk_id: 'Inbound trunk',
  outbound_trunk_id: 'Outbound trunk',
  agent_number: 'Agent number',
  user_number: 'User number',
  start_time: 'Start',
  end_time: 'End',
  duration: 'Duration (s)',
  timezone: 'Time zone',
  answered: 'Answered',
  status: 'Status',
  end_reason: 'End reason',
  end_reason_detail: 'End reason (detail)',
  sip_status_code: 'SIP status code',
  sip_status: 'SIP status',
  recording_filename: 'Recording file',
  recording_location: 'Recording location',
  recording_status: 'Recording status',
  recording_error: 'Recording error',
  recording_size_bytes: 'Recording size (bytes)',
  recording_duration: 'Recording length (s)',
  recording_duration_ms: 'Recording length (ms)',
  egress_id: 'Egress id',
  job_id: 'Job id',
  room_sid: 'Room SID',
  sip_call_id: 'SIP call id',
  trunk_id: 'Trunk',
  dispatch_rule_id: 'Dispatch rule',
  answering_machine: 'Answering machine',
  tool_calls: 'Tool calls',
};

/** @param {unknown} value */
function shown(value) {
  if (typeof value === 'boolean') return yesNo(value);
  if (value === null || value === undefined) return '–';
  return typeof value === 'object' ? JSON.stringify(value) : String(value);
}

/**
 * @param {Record<string, unknown>} metadata
 * @param {Set<string>} inInsights fields the Insights list says in words (their raw objects are left out here)
 */
function metadataList(metadata, inInsights) {
  return el(
    'dl',
    { class: 'metadata', 'data-role': 'metadata' },
    Object.entries(metadata)
      .filter(([key, value]) => !(typeof value === 'object' && value !== null && inInsights.has(key)))
      .map(([key, value]) => [el('dt', {}, /** @type {Record<string, string>} */ (LABELS)[key] ?? key), el('dd', { 'data-field': key }, shown(value))]),
  );
}

/**
 * Why the call ended, the SIP status, the latency summary, usage and estimated cost: the
 * server's lines (the same words `calldata calls show` prints).
 * @param {{ field: string, label: string, lines: string[] }[]} insights
 */
function insightList(insights) {
  return el(
    'dl',
    { class: 'metadata insights', 'data-role': 'insights' },
    insights.map((insight) => [
      el('dt', {}, insight.label),
      el(
        'dd',
        { 'data-kind': insight.field },
        insight.lines.map((line) => el('div', { class: 'insight-line' }, line)),
      ),
    ]),
  );
}

/** @param {any[]} lines */
function conversation(lines) {
  return el(
    'ol',
    { class: 'conversation', 'data-role': 'conversation' },
    lines.map((line) =>
      el(
        'li',
        { class: `turn ${line.role === 'assistant' ? 'agent' : 'user'}${line.interrupted ? ' interrupted' : ''}`, 'data-role': 'turn' },
        el('div', { class: 'who' }, el('span', { class: 'speaker' }, line.speaker), ' ', el('time', { datetime: line.timestamp }, line.time)),
        el('p', { class: 'content' }, line.content),
        line.interrupted ? el('span', { class: 'interrupted-mark', title: 'The speaker was interrupted here' }, 'interrupted') : null,
      ),
    ),
  );
}

/**
 * @param {HTMLElement} main
 * @param {string} callId
 */
export async function renderCall(main, callId) {
  replace(main, el('p', { class: 'loading' }, 'Loading…'));
  const call = await getJson(`/api/calls/${encodeURIComponent(callId)}`);
  const row = call.row;
  const title = el('h1', {}, el('span', { class: 'room-name' }, row?.roomName ?? call.metadata?.room_name ?? callId));
  const summary = row
    ? el(
        'p',
        { class: 'summary' },
        `${row.time} (${call.timezone}) · ${row.direction} · ${row.from ?? '–'} → ${row.to ?? '–'} · ${row.duration} · `,
        el('span', { class: 'status' }, row.status),
      )
    : null;
  const recording = call.recording
    ? el(
        'section',
        { class: 'recording', 'aria-label': 'Recording' },
        el('h2', {}, 'Recording'),
        el('audio', { controls: true, preload: 'metadata', src: call.recording.src }, 'Your browser cannot play this recording.'),
        el('p', {}, el('a', { href: call.recording.src, download: true }, 'Download the recording'), ' (the link is valid for 15 minutes)'),
      )
    : el('section', { class: 'recording', 'aria-label': 'Recording' }, el('h2', {}, 'Recording'), el('p', { class: 'hint' }, 'No recording for this call.'));
  const links = el(
    'p',
    { class: 'raw' },
    'Raw documents: ',
    call.links.metadata ? el('a', { href: call.links.metadata, 'data-role': 'metadata-json' }, 'metadata.json') : 'no metadata',
    ' · ',
    call.links.transcription ? el('a', { href: call.links.transcription, 'data-role': 'transcription-json' }, 'transcription.json') : 'no transcript',
  );
  const transcript = el(
    'section',
    { class: 'transcript', 'aria-label': 'Transcript' },
    el('h2', {}, 'Transcript'),
    !call.hasTranscript
      ? el('p', { class: 'hint' }, 'No transcript stored for this call.')
      : call.conversation.length === 0
        ? el('p', { class: 'hint' }, 'The transcript is empty.')
        : [el('p', { class: 'hint' }, `Times in ${call.timezone}.`), conversation(call.conversation)],
  );
  replace(
    main,
    el('p', { class: 'back' }, el('a', { href: '/' }, '« All calls')),
    title,
    summary,
    call.notes.map((/** @type {string} */ note) => el('p', { class: 'note' }, note)),
    el(
      'div',
      { class: 'call-grid' },
      el(
        'section',
        { class: 'details', 'aria-label': 'Metadata' },
        call.insights.length > 0 ? [el('h2', {}, 'Insights'), insightList(call.insights)] : null,
        el('h2', {}, 'Metadata'),
        call.metadata ? metadataList(call.metadata, new Set(call.insights.map((/** @type {{ field: string }} */ i) => i.field))) : el('p', {}, 'No metadata stored.'),
        links,
      ),
      el('div', {}, recording, transcript),
    ),
    el('p', { class: 'permalink hint' }, 'Stored at ', el('code', {}, call.location), ' · ', el('a', { href: callPath(callId) }, 'link to this call')),
  );
  document.title = `calldata: ${row?.roomName ?? callId}`;
}
