// Package delivery writes trails' CloudTrail log files to the object store:
// for every logging trail it reads the journal from the trail's own
// durable cursor, selects events with the trail's regions and event
// selectors, batches them into gzip {"Records":[...]} files at CloudTrail's
// key layout, notifies the trail's topic, and keeps the trail's delivery
// status (GetTrailStatus) current.
//
// # Exactly once
//
// Every selected event lands in exactly one delivered file of the trail,
// across restarts and kill -9. The cursor only moves after the files
// holding everything before it are durably written. A batch is a journal
// range (cursor+1 .. last); before its first file is written the batch's
// plan (range, delivery time, selection, destination) is stored durably,
// and every file name is derived from it: the 16-character unique part of
// the name is a hash of the trail ARN, the range and the region, and the
// timestamp is the plan's. A process that dies anywhere between the plan
// and the cursor commit leaves the plan behind; the next one rebuilds the
// same files from the same range with the same selection (byte for byte,
// see batch.finish) and writes them under the same keys, an idempotent
// overwrite, then moves the cursor. Nothing is ever written under a key
// that is not derived from a stored plan.
//
// # Logging windows
//
// A trail delivers the events that arrive while it is logging. The
// Manager records, per trail, windows of journal sequence numbers: StartLogging
// opens one just after the journal's last entry, StopLogging closes it at
// the last entry. Events acknowledged before StopLogging are still
// delivered (the deliverer drains the window, then stops); events that
// arrive while the trail is stopped are never delivered, as on AWS. A
// trail service that calls Manager.TrailChanged right after each change
// makes the windows exact; otherwise the Manager notices at its next poll
// (within Options.PollInterval).
//
// # Failures
//
// A write that fails (missing bucket, refused credentials, unreachable
// store, KMS asked of a store that cannot do it) is retried with capped,
// jittered exponential backoff while the events wait in the journal; each
// attempt is recorded with trail.Service.RecordDelivery using S3's error
// code, so GetTrailStatus shows what is wrong and when it last worked.
package delivery
