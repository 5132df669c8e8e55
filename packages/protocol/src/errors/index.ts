export { ErrorCode, ALL_ERROR_CODES } from './codes.ts';
export { ERROR_STATUS, isRetryableCode } from './status-map.ts';
export { FaasError, isFaasError, parseErrorBody, type ErrorBody } from './faas-error.ts';
