/*
 * opencv_shim.cpp: ORB + ratio-test matching + RANSAC homography behind a
 * C interface (opencv_shim.h), plus DIS flow for smooth frames. Exceptions never cross into C: each entry
 * point catches everything and reports failure as NULL / 0.
 */
#include "opencv_shim.h"

#include <new>
#include <vector>

#include <opencv2/calib3d.hpp>
#include <opencv2/core.hpp>
#include <opencv2/features2d.hpp>
#include <opencv2/video/tracking.hpp>

struct rs_cv_features {
    std::vector<cv::KeyPoint> kp;
    cv::Mat desc;
};

extern "C" rs_cv_features *rs_cv_features_detect(const uint8_t *grey, const uint8_t *allow,
                                                 uint32_t width, uint32_t height,
                                                 uint32_t max_features)
{
    rs_cv_features *f = nullptr;
    try {
        f = new rs_cv_features();
        cv::Mat img((int)height, (int)width, CV_8UC1, const_cast<uint8_t *>(grey));
        cv::Mat m;
        if (allow) {
            m = cv::Mat((int)height, (int)width, CV_8UC1, const_cast<uint8_t *>(allow));
        }
        /* Small frames need a smaller border and patch than ORB's 31 px
           defaults or most of a 432x240 frame is out of reach. */
        cv::Ptr<cv::ORB> orb = cv::ORB::create((int)max_features, 1.2f, 6, 15, 0, 2,
                                               cv::ORB::HARRIS_SCORE, 15, 12);
        orb->detectAndCompute(img, m, f->kp, f->desc);
        return f;
    } catch (...) {
        delete f;
        return nullptr;
    }
}

extern "C" void rs_cv_features_destroy(rs_cv_features *f)
{
    delete f;
}

extern "C" uint32_t rs_cv_features_count(const rs_cv_features *f)
{
    return f ? (uint32_t)f->kp.size() : 0;
}

extern "C" uint32_t rs_cv_homography(const rs_cv_features *a, const rs_cv_features *b,
                                     double ransac_px, double h[9], float *share)
{
    *share = 0.0f;
    try {
        if (!a || !b || a->kp.size() < 8 || b->kp.size() < 8) {
            return 0;
        }
        cv::BFMatcher matcher(cv::NORM_HAMMING, false);
        std::vector<std::vector<cv::DMatch>> knn;
        matcher.knnMatch(a->desc, b->desc, knn, 2);
        std::vector<cv::Point2f> pa;
        std::vector<cv::Point2f> pb;
        for (const auto &m : knn) {
            if (m.size() == 2 && m[0].distance < 0.8f * m[1].distance) {
                pa.push_back(a->kp[(size_t)m[0].queryIdx].pt);
                pb.push_back(b->kp[(size_t)m[0].trainIdx].pt);
            }
        }
        if (pa.size() < 8) {
            return 0;
        }
        std::vector<unsigned char> inl;
        cv::Mat hm = cv::findHomography(pa, pb, cv::RANSAC, ransac_px, inl, 2000, 0.995);
        if (hm.empty()) {
            return 0;
        }
        uint32_t n = 0;
        for (unsigned char c : inl) {
            n += c ? 1u : 0u;
        }
        for (int i = 0; i < 9; i++) {
            h[i] = hm.at<double>(i / 3, i % 3);
        }
        *share = (float)n / (float)pa.size();
        return n;
    } catch (...) {
        return 0;
    }
}

extern "C" uint32_t rs_cv_flow_homography(const uint8_t *a, const uint8_t *b,
                                          const uint8_t *allow_a, uint32_t width,
                                          uint32_t height, uint32_t step, double ransac_px,
                                          double h[9], float *share)
{
    *share = 0.0f;
    try {
        cv::Mat ma((int)height, (int)width, CV_8UC1, const_cast<uint8_t *>(a));
        cv::Mat mb((int)height, (int)width, CV_8UC1, const_cast<uint8_t *>(b));
        cv::Mat flow;
        cv::Ptr<cv::DISOpticalFlow> dis =
            cv::DISOpticalFlow::create(cv::DISOpticalFlow::PRESET_MEDIUM);
        dis->calc(ma, mb, flow);
        std::vector<cv::Point2f> pa;
        std::vector<cv::Point2f> pb;
        step = step ? step : 8;
        /* Stay off the border, where DIS extrapolates. */
        for (uint32_t y = step; y + step < height; y += step) {
            for (uint32_t x = step; x + step < width; x += step) {
                if (allow_a && !allow_a[(size_t)y * width + x]) {
                    continue;
                }
                cv::Point2f f = flow.at<cv::Point2f>((int)y, (int)x);
                pa.emplace_back((float)x, (float)y);
                pb.emplace_back((float)x + f.x, (float)y + f.y);
            }
        }
        if (pa.size() < 16) {
            return 0;
        }
        std::vector<unsigned char> inl;
        cv::Mat hm = cv::findHomography(pa, pb, cv::RANSAC, ransac_px, inl, 2000, 0.995);
        if (hm.empty()) {
            return 0;
        }
        uint32_t n = 0;
        for (unsigned char c : inl) {
            n += c ? 1u : 0u;
        }
        for (int i = 0; i < 9; i++) {
            h[i] = hm.at<double>(i / 3, i % 3);
        }
        *share = (float)n / (float)pa.size();
        return n;
    } catch (...) {
        return 0;
    }
}
