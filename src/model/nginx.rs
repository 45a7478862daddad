//! nginx's semantic configuration: http → server → location with nginx's inheritance, upstream
//! groups, and nginx's defaults. (Being written.)
