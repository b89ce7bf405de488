export { WebhookConnector } from './webhook-connector.js';
export { verifyWebhookSignature, signatureHeader, DEFAULT_TOLERANCE_SEC, type Verification, type VerifyOptions } from './webhook-signature.js';
export { deliverySchema, provisionResponseSchema, listResponseSchema, PAYLOAD_VERSION, type Delivery, type Operation } from './webhook-payload.js';
export { endpoint, endpointProblems, isLoopback, send, type Endpoint, type HttpCall, type HttpResponse } from './outbound-http.js';
