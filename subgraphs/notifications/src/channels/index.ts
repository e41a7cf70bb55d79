// The delivery channels of the notifications service: email (SMTP or .eml files), SMS (Twilio or a log file) and
// web push (VAPID), with one error vocabulary (transient / permanent / gone). Every setting is a plain option;
// the service maps its environment onto them.
export * from './email.js';
export * from './errors.js';
export * from './push.js';
export * from './sms.js';
